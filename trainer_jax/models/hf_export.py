"""Export a RewardModel to a Hugging Face ``*ForSequenceClassification`` directory.

The directory (safetensors weights with ``score.weight``, ``config.json``, tokenizer files) loads with
``transformers.AutoModelForSequenceClassification.from_pretrained`` unchanged, with no missing or
unexpected keys. Weights are written as float32, in files of at most ``shard_bytes`` (one
``model.safetensors``, or ``model-0000i-of-0000n.safetensors`` plus ``model.safetensors.index.json``).

* Pooling: ``config.pad_token_id`` and the tokenizer's pad token are set to a token that never occurs in
  text (``trainer_jax.data.tokenizer.choose_pad_token``), so transformers pools where the trainer does.
* Memory: parameters are brought to the host one at a time (gathered across processes on a multi-host
  mesh), so the host holds one parameter plus one output file's worth of tensors, never the whole model.
* Multi-host: every process must call ``export_reward_model`` (the gathers are collective); process 0
  alone writes.
* Atomic: the directory is built next to its destination and renamed into place, so a crash never leaves
  a half-written model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from predictor.data.atomic import umask
from predictor.errors import ArtifactError
from trainer_jax import require_train_extra
from trainer_jax.data.tokenizer import PadToken, choose_pad_token, load_tokenizer
from trainer_jax.models.config import decoder_dict, read_config_json
from trainer_jax.models.families import FAMILIES, MULTIMODAL
from trainer_jax.models.heads import RewardModel
from trainer_jax.models.keymap import Entry, reward_entries

SHARD_BYTES = 4 * 2**30  # largest weights file written
MERGE_KEY = "basepick_merge_weights"  # config.json: output name -> weight of a merged regression head


def host_array(value: jax.Array) -> np.ndarray:
    """The whole of a (possibly sharded, possibly multi-host) array on this host, as numpy."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(jax.device_get(value))


def hf_tensors(module: nnx.Module, entries: list[Entry]) -> Iterator[tuple[str, np.ndarray]]:
    """(HF tensor name, float32 array) inverting a key map (layers, transposes, fused rows).

    Each NNX parameter is gathered to the host once, all its HF tensors cut from it, then dropped; a fused
    HF tensor (Phi-3's qkv) is yielded once its last piece is cut.
    """
    flat = dict(nnx.to_flat_state(nnx.state(module, nnx.Param)))
    by_path: dict[tuple, list[Entry]] = {}
    pieces_left: dict[str, int] = {}
    for entry in entries:
        by_path.setdefault(entry.path, []).append(entry)
        pieces_left[entry.hf_key] = pieces_left.get(entry.hf_key, 0) + 1
    pending: dict[str, list[tuple[int, np.ndarray]]] = {}
    for path, entries in by_path.items():
        whole = host_array(flat[path].get_value())
        for entry in entries:
            array = np.asarray(whole if entry.layer is None else whole[entry.layer], dtype=np.float32)
            if entry.transpose:
                array = array.T  # nnx kernel (in, out) -> torch Linear (out, in)
            pending.setdefault(entry.hf_key, []).append((entry.rows[0] if entry.rows else 0, array))
            pieces_left[entry.hf_key] -= 1
            if not pieces_left[entry.hf_key]:
                parts = sorted(pending.pop(entry.hf_key), key=lambda p: p[0])
                yield entry.hf_key, np.ascontiguousarray(np.concatenate([a for _, a in parts], axis=0))
        del whole


def reward_tensors(model: RewardModel) -> Iterator[tuple[str, np.ndarray]]:
    """The HF ``*ForSequenceClassification`` tensors of a RewardModel (see ``hf_tensors``)."""
    return hf_tensors(model, reward_entries(model.cfg))


def _fold(tensors: Iterator[tuple[str, np.ndarray]], weights: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The head's (L, D) ``score.weight`` replaced by the merged (1, D) ``weights @ W``; the rest unchanged."""
    for key, array in tensors:
        yield key, (weights[None, :] @ array).astype(np.float32) if key == "score.weight" else array


def classifier_config(
    source_config: dict[str, Any], family: str, num_labels: int, pad_token_id: int | None,
    label_names: list[str] | None = None,
) -> dict[str, Any]:
    """The source config.json rewritten for the family's ``*ForSequenceClassification`` with num_labels outputs.

    From a multimodal source (Gemma 3) the text decoder's config is written, completed with transformers'
    defaults, as a text-only classifier (``Gemma3TextForSequenceClassification``).
    """
    multimodal = source_config.get("model_type") in MULTIMODAL
    cfg = dict(decoder_dict(source_config) if multimodal else source_config)
    cfg["architectures"] = [FAMILIES[family].classifier]
    old = source_config.get("id2label") or {}
    id2label = old if len(old) == num_labels else {str(i): f"LABEL_{i}" for i in range(num_labels)}
    if label_names:
        id2label = {str(i): name for i, name in enumerate(label_names)}
    cfg["id2label"] = {str(k): v for k, v in id2label.items()}
    cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
    cfg["num_labels"] = num_labels
    if pad_token_id is not None:
        cfg["pad_token_id"] = pad_token_id
    cfg["dtype"] = "float32"
    if "torch_dtype" in cfg:
        cfg["torch_dtype"] = "float32"
    return cfg


def _save_part(group: dict[str, np.ndarray], out: Path, i: int) -> tuple[str, list[str]]:
    name = f"part-{i:05d}.safetensors"
    save_file(group, str(out / name), metadata={"format": "pt"})
    (out / name).chmod(0o666 & ~umask())  # safetensors writes 0600; the export follows the umask
    return name, list(group)


def _write_weights(tensors: Iterator[tuple[str, np.ndarray]], out: Path, shard_bytes: int) -> None:
    """safetensors files of at most ``shard_bytes`` (a tensor larger than that gets a file of its own),
    each written as soon as it is full: the host holds one file's tensors at a time."""
    written: list[tuple[str, list[str]]] = []
    group: dict[str, np.ndarray] = {}
    size = 0
    for key, array in tensors:
        if group and size + array.nbytes > shard_bytes:
            written.append(_save_part(group, out, len(written)))
            group, size = {}, 0
        group[key] = array
        size += array.nbytes
    written.append(_save_part(group, out, len(written)))
    if len(written) == 1:
        (out / written[0][0]).rename(out / "model.safetensors")
        return
    weight_map = {}
    for i, (name, keys) in enumerate(written, 1):
        final = f"model-{i:05d}-of-{len(written):05d}.safetensors"
        (out / name).rename(out / final)
        weight_map.update(dict.fromkeys(keys, final))
    total = sum((out / f).stat().st_size for f in set(weight_map.values()))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _write_tokenizer(source: Path, out: Path, pad: PadToken) -> None:
    tok = load_tokenizer(source)
    if pad.added:
        tok.add_special_tokens({"pad_token": pad.token})
    else:
        tok.pad_token = pad.token
    assert tok.pad_token_id == pad.id, "pad token and its id disagree"
    tok.save_pretrained(str(out))


def export_reward_model(
    model: RewardModel,
    out_dir: str | Path,
    *,
    source_dir: str | Path,
    overwrite: bool = False,
    pad: PadToken | None = None,
    merge: dict[str, float] | None = None,
    fold: bool = True,
    shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Write ``model`` as a HF classifier directory at out_dir; config and tokenizer come from source_dir.

    ``pad``: the pad token to declare (``train`` chooses it against its data before training); default
    ``choose_pad_token`` without data. ``merge``: output name -> weight of a multi-output (regression)
    head; with ``fold`` the weights are folded into the head (``score.weight`` becomes ``w @ W``: one
    output that every tool reads as the reward), else the outputs keep their names and config.json
    records the weights (``basepick score`` applies them). Every process of a multi-host run must call
    this; process 0 writes.
    """
    require_train_extra()
    source, out = Path(source_dir), Path(out_dir)
    main = jax.process_index() == 0
    if main and out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; choose a new directory or pass overwrite=True")
    src_config = read_config_json(source)
    if pad is None:
        pad = choose_pad_token(load_tokenizer(source), model.cfg.vocab_size)
    if merge is not None and len(merge) != model.num_labels:
        raise ArtifactError(f"{len(merge)} merge weights for a head of {model.num_labels} outputs")
    folded = merge is not None and fold
    config = classifier_config(src_config, model.cfg.family, 1 if folded else model.num_labels, pad.id,
                               None if folded else list(merge or ()))
    if merge is not None:
        config[MERGE_KEY] = {k: float(v) for k, v in merge.items()}

    tmp = None
    if main:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tensors = reward_tensors(model)
        if folded:
            tensors = _fold(tensors, np.asarray(list(merge.values()), np.float32))
        if not main:
            for _ in tensors:  # take part in every gather; write nothing
                pass
            return out
        tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private (0700); an export follows the umask
        _write_weights(tensors, tmp, shard_bytes)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _write_tokenizer(source, tmp, pad)
        if out.exists():  # overwrite: move the old one aside first so the swap is two renames
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
