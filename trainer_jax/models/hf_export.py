"""Export a RewardModel to a Hugging Face ``*ForSequenceClassification`` directory.

The directory (``model.safetensors`` with ``score.weight``, ``config.json``, tokenizer files) loads with
``transformers.AutoModelForSequenceClassification.from_pretrained`` unchanged, with no missing or
unexpected keys. Weights are written as float32. The directory is built next to its destination and
renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from predictor.errors import ArtifactError
from trainer_jax import require_train_extra
from trainer_jax.models.config import CLASS_PREFIX, read_config_json
from trainer_jax.models.heads import RewardModel
from trainer_jax.models.keymap import reward_entries

# Tokenizer files copied verbatim from the source directory when present.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


def reward_tensors(model: RewardModel) -> dict[str, np.ndarray]:
    """HF tensor name -> float32 numpy array, inverting the import key map (transposes, fused rows)."""
    flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    pieces: dict[str, list[tuple[int, np.ndarray]]] = {}
    for entry in reward_entries(model.cfg):
        array = np.asarray(jax.device_get(flat[entry.path].get_value()), dtype=np.float32)
        if entry.transpose:
            array = array.T  # nnx kernel (in, out) -> torch Linear (out, in)
        start = entry.rows[0] if entry.rows else 0
        pieces.setdefault(entry.hf_key, []).append((start, array))
    return {
        key: np.ascontiguousarray(np.concatenate([a for _, a in sorted(parts, key=lambda p: p[0])], axis=0))
        for key, parts in pieces.items()
    }


def classifier_config(
    source_config: dict[str, Any], family: str, num_labels: int, pad_token_id: int | None
) -> dict[str, Any]:
    """The source config.json rewritten for ``{Family}ForSequenceClassification`` with num_labels outputs."""
    cfg = dict(source_config)
    cfg["architectures"] = [f"{CLASS_PREFIX[family]}ForSequenceClassification"]
    old = source_config.get("id2label") or {}
    id2label = old if len(old) == num_labels else {str(i): f"LABEL_{i}" for i in range(num_labels)}
    cfg["id2label"] = {str(k): v for k, v in id2label.items()}
    cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
    cfg["num_labels"] = num_labels
    if pad_token_id is not None:
        cfg["pad_token_id"] = pad_token_id
    cfg["dtype"] = "float32"
    if "torch_dtype" in cfg:
        cfg["torch_dtype"] = "float32"
    return cfg


def _pad_id_from_tokenizer_files(source: Path) -> int | None:
    """Pad id (else eos id) from the source tokenizer, read the same way as trainer_jax.data.tokenizer does."""
    from trainer_jax.data.tokenizer import load_tokenizer

    try:
        return load_tokenizer(source).pad_token_id
    except ArtifactError:  # no usable tokenizer: leave pad_token_id as the source config has it
        return None


def export_reward_model(
    model: RewardModel,
    out_dir: str | Path,
    *,
    source_dir: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a HF classifier directory at out_dir; config and tokenizer come from source_dir."""
    require_train_extra()
    source, out = Path(source_dir), Path(out_dir)
    if out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; choose a new directory or pass overwrite=True")
    src_config = read_config_json(source)
    pad_id = src_config.get("pad_token_id")
    if not isinstance(pad_id, int):
        pad_id = _pad_id_from_tokenizer_files(source)
    config = classifier_config(src_config, model.cfg.family, model.num_labels, pad_id)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_file(reward_tensors(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        if out.exists():  # overwrite: move the old one aside first so the swap is two renames
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
