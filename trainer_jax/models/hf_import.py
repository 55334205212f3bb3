"""Torch-free loading of a local Hugging Face model directory into NNX models.

Every weights file checked whole first (present, not truncated, holding what the index says) -> abstract
model (``nnx.eval_shape``) -> explicit key map with transposes (``trainer_jax.models.keymap``; a multimodal
checkpoint's language model alone) -> strict report of missing, unexpected and mis-shaped tensors (from the
safetensors headers) -> each parameter built shard by shard with ``jax.make_array_from_callback`` from
sliced safetensors reads (numpy, no torch), so a process reads only what its devices hold -> ``nnx.merge``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401  registers bfloat16 with numpy before safetensors reads bf16 tensors
import numpy as np
from flax import nnx
from safetensors import safe_open

from predictor.errors import ArtifactError
from trainer_jax import require_train_extra
from trainer_jax.models.config import DecoderConfig, config_from_dict, read_config_json, supported_architecture
from trainer_jax.models.decoder import CausalLM
from trainer_jax.models.families import MULTIMODAL
from trainer_jax.models.heads import RewardModel
from trainer_jax.models.keymap import Entry, causal_lm_entries, reward_entries

# A sharding for every parameter, or a function of (NNX path, abstract array) giving one.
ShardingSpec = jax.sharding.Sharding | Callable[[tuple, jax.ShapeDtypeStruct], jax.sharding.Sharding] | None


@dataclasses.dataclass(frozen=True)
class ModelDir:
    path: Path  # the Hugging Face model directory
    hf_config: dict[str, Any]  # parsed config.json, kept whole so export can rewrite it
    config: DecoderConfig  # what the NNX modules need from it
    architecture: str  # architectures[0], e.g. "Qwen2ForSequenceClassification"
    is_classifier: bool  # True for *ForSequenceClassification (has score.weight, no lm_head)
    num_labels: int  # outputs of score.weight (from id2label / num_labels; 1 for base models)
    weight_map: dict[str, str]  # tensor name -> safetensors file name inside path
    prefix: str = "model"  # where the decoder's tensors live (Gemma 3 multimodal: "model.language_model")
    lm_head: str = "lm_head.weight"  # the LM head's tensor name
    ignored: frozenset[str] = frozenset()  # tensors not part of the decoder (a multimodal model's vision tower)


def _keys(file: Path) -> list[str]:
    """The tensor names of one safetensors file; ArtifactError naming it when missing, truncated or corrupt."""
    if not file.is_file():
        raise ArtifactError(f"{file}: weights file is missing (the directory's safetensors index names it)")
    try:
        with safe_open(str(file), framework="numpy") as f:  # checks the header covers the file exactly
            return list(f.keys())
    except Exception as exc:  # safetensors raises its own SafetensorError for truncated files and bad headers
        raise ArtifactError(f"{file}: truncated or not a safetensors file ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _weight_map(path: Path) -> dict[str, str]:
    """Tensor name -> file, every file checked whole (present, not truncated, holding what the index says)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            listed = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            weight_map = {str(k): str(v) for k, v in listed.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"{index} is not a valid safetensors index: {_one_line(exc)}") from None
        for name in sorted(set(weight_map.values())):
            absent = {k for k, v in weight_map.items() if v == name} - set(_keys(path / name))
            if absent:
                raise ArtifactError(f"{path / name}: lacks {len(absent)} tensors the index puts there "
                                    f"({_short(sorted(absent))})")
        return weight_map
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ArtifactError(
            f"{path} has no *.safetensors weights (pytorch_model.bin is not read without torch); "
            "re-save the model with save_pretrained(safe_serialization=True)"
        )
    return {key: file.name for file in files for key in _keys(file)}


def _language_model(hf_config: dict[str, Any], weight_map: dict[str, str]) -> dict[str, Any]:
    """Where a multimodal checkpoint keeps its decoder: transformers 5 saves ``model.language_model.*``, the
    published Gemma 3 checkpoints hold ``language_model.model.*``. Everything else (vision) is ignored."""
    if hf_config.get("model_type") not in MULTIMODAL:
        return {}
    if "language_model.model.embed_tokens.weight" in weight_map:
        prefix, lm_head = "language_model.model", "language_model.lm_head.weight"
    else:
        prefix, lm_head = "model.language_model", "lm_head.weight"
    ignored = frozenset(k for k in weight_map if not k.startswith(prefix + ".") and k not in (lm_head, "score.weight"))
    return {"prefix": prefix, "lm_head": lm_head, "ignored": ignored}


def read_model_dir(model_dir: str | Path) -> ModelDir:
    """Inspect a model directory: config, supported architecture, every weights file. ArtifactError if not usable."""
    path = Path(model_dir)
    hf_config = read_config_json(path)
    arch = supported_architecture(hf_config, path)
    config = config_from_dict(hf_config)
    is_classifier = arch.endswith("ForSequenceClassification")
    labels = hf_config.get("id2label")
    num_labels = len(labels) if labels else int(hf_config.get("num_labels", 1) or 1)
    weight_map = _weight_map(path)
    return ModelDir(path, hf_config, config, arch, is_classifier, num_labels if is_classifier else 1, weight_map,
                    **_language_model(hf_config, weight_map))


def _short(names: list[str]) -> str:
    shown = ", ".join(names[:6])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


def _resolve(index: slice, size: int) -> tuple[int, int]:
    start, stop, step = index.indices(size)
    assert step == 1, "shards are contiguous"
    return start, stop


class _Tensors:
    """Lazy, sliced reads of a model directory's tensors: one open handle per safetensors file."""

    def __init__(self, src: ModelDir, stack: contextlib.ExitStack):
        self.src, self.stack, self.handles = src, stack, {}

    def _handle(self, key: str):
        name = self.src.weight_map[key]
        if name not in self.handles:
            try:
                self.handles[name] = self.stack.enter_context(safe_open(str(self.src.path / name), framework="numpy"))
            except Exception as exc:  # missing shard, corrupt header (safetensors raises its own error type)
                raise ArtifactError(f"{self.src.path / name}: cannot read weights ({exc})") from None
        return self.handles[name]

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handle(key).get_slice(key).get_shape())

    def read(self, entry: Entry, index: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
        """The block ``index`` of the NNX array (``shape``) that ``entry`` feeds, read from disk alone."""
        hf_index = list(index[::-1] if entry.transpose else index)  # torch Linear (out, in) vs nnx (in, out)
        hf_shape = shape[::-1] if entry.transpose else shape
        if entry.rows is not None:  # a fused tensor: shift the row window to the entry's rows
            start, stop = _resolve(hf_index[0], hf_shape[0])
            hf_index[0] = slice(entry.rows[0] + start, entry.rows[0] + stop)
        block = self._handle(entry.hf_key).get_slice(entry.hf_key)[tuple(hf_index)]
        return block.T if entry.transpose else block


def _check_tensors(src: ModelDir, entries: list[Entry], flat: dict, tensors: _Tensors) -> None:
    """ArtifactError listing every tensor whose header shape does not fit its NNX parameter."""
    mismatched = []
    fused_rows: dict[str, int] = {}
    for entry in entries:
        nnx_shape = tuple(flat[entry.path].get_value().shape)[0 if entry.layer is None else 1 :]
        expected = nnx_shape[::-1] if entry.transpose else nnx_shape  # HF layout of this entry's part
        hf_shape = tensors.shape(entry.hf_key)
        part = hf_shape if entry.rows is None else (entry.rows[1] - entry.rows[0], *hf_shape[1:])
        if part != expected:
            mismatched.append(f"{entry.hf_key} {hf_shape} vs expected {expected}")
        if entry.rows is not None:
            fused_rows[entry.hf_key] = max(fused_rows.get(entry.hf_key, 0), entry.rows[1])
    for key, rows in fused_rows.items():  # the row slices of a fused tensor must cover it exactly
        if tensors.shape(key)[0] != rows:
            mismatched.append(f"{key} {tensors.shape(key)} vs expected {rows} rows")
    if mismatched:
        raise ArtifactError(f"{src.path}: {len(mismatched)} tensors with the wrong shape ({_short(mismatched)})")


def _target(path: tuple, abstract: jax.ShapeDtypeStruct, sharding: ShardingSpec) -> jax.sharding.Sharding:
    if sharding is None:
        return jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return sharding(path, abstract) if callable(sharding) else sharding


def _load_into(
    abstract: nnx.Module,
    src: ModelDir,
    entries: list[Entry],
    ignore: set[str],
    fresh: dict[tuple, Callable[[], np.ndarray]],
    sharding: ShardingSpec,
) -> nnx.Module:
    """Fill the abstract module's parameters from the directory's tensors; strict about names and shapes.

    Each parameter is built with ``jax.make_array_from_callback``: every device's shard is read from
    the safetensors files alone (sliced reads), so a process reads only the shards its devices hold.
    """
    graphdef, state = nnx.split(abstract)
    flat = dict(nnx.to_flat_state(state))
    by_path: dict[tuple, list[Entry]] = {}
    for entry in entries:
        by_path.setdefault(entry.path, []).append(entry)
    assert set(by_path) | set(fresh) == set(flat), "key map out of sync with the NNX module"
    missing = sorted({e.hf_key for e in entries if e.path not in fresh and e.hf_key not in src.weight_map})
    used = {e.hf_key for e in entries}
    buffers = {k for k in src.weight_map if k.endswith("rotary_emb.inv_freq")}  # old checkpoints; recomputed
    unexpected = sorted(set(src.weight_map) - used - ignore - buffers - src.ignored)
    if missing or unexpected:
        parts = [f"{len(missing)} missing tensors ({_short(missing)})"] if missing else []
        parts += [f"{len(unexpected)} unexpected tensors ({_short(unexpected)})"] if unexpected else []
        raise ArtifactError(f"{src.path} does not match a {src.architecture} of its config.json: " + "; ".join(parts))

    values: dict[tuple, jax.Array] = {}
    with contextlib.ExitStack() as stack:
        tensors = _Tensors(src, stack)
        _check_tensors(src, [e for e in entries if e.path not in fresh], flat, tensors)
        for path, var in flat.items():
            abstract_value = var.get_value()
            shape, dtype = tuple(abstract_value.shape), abstract_value.dtype
            if path in fresh:
                whole = fresh[path]().astype(dtype)
                callback = lambda index, whole=whole: whole[index]  # noqa: E731
            elif by_path[path][0].layer is None:
                entry = by_path[path][0]
                callback = lambda index, e=entry, s=shape, d=dtype: tensors.read(e, index, s).astype(d)  # noqa: E731
            else:  # stacked layers: one HF tensor per index of the leading axis
                layers = sorted(by_path[path], key=lambda e: e.layer)

                def callback(index, layers=layers, s=shape, d=dtype):
                    first, last = _resolve(index[0], s[0])
                    blocks = [tensors.read(e, index[1:], s[1:]) for e in layers[first:last]]
                    return np.stack(blocks).astype(d)

            values[path] = jax.make_array_from_callback(shape, _target(path, abstract_value, sharding), callback)
    new_state = nnx.from_flat_state([(path, var.replace(value=values[path])) for path, var in flat.items()])
    return nnx.merge(graphdef, new_state)


def load_reward_model(
    model_dir: str | Path,
    *,
    num_labels: int | None = None,
    dtype: Any = jnp.float32,
    param_dtype: Any = jnp.float32,
    sharding: ShardingSpec = None,
    seed: int = 0,
) -> RewardModel:
    """Load a RewardModel from a ``*ForSequenceClassification`` dir, or from a ``*ForCausalLM`` base.

    From a classifier dir the score head is read (``num_labels``, if given, must match it). From a base
    LM the LM head is dropped and a fresh score head of ``num_labels`` (default 1) outputs is drawn from
    N(0, initializer_range) with ``jax.random.key(seed)``.
    """
    require_train_extra()
    src = read_model_dir(model_dir)
    cfg = src.config
    labels = src.num_labels if src.is_classifier else (num_labels or 1)
    if src.is_classifier and num_labels is not None and num_labels != src.num_labels:
        raise ArtifactError(f"{src.path} has {src.num_labels} reward outputs, not the {num_labels} asked for")
    abstract = nnx.eval_shape(
        lambda: RewardModel(cfg, num_labels=labels, dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(seed))
    )
    fresh: dict[tuple, Callable[[], np.ndarray]] = {}
    ignore: set[str] = set()
    if not src.is_classifier:
        ignore = {src.lm_head}
        key = jax.random.key(seed)
        fresh[("score", "kernel")] = lambda: np.asarray(
            jax.random.normal(key, (cfg.hidden_size, labels), jnp.float32) * cfg.initializer_range
        )
    return _load_into(abstract, src, reward_entries(cfg, src.prefix), ignore, fresh, sharding)


def load_causal_lm(
    model_dir: str | Path,
    *,
    dtype: Any = jnp.float32,
    param_dtype: Any = jnp.float32,
    sharding: ShardingSpec = None,
) -> CausalLM:
    """Load a CausalLM (backbone + LM head, tied or not) from a ``*ForCausalLM`` directory."""
    require_train_extra()
    src = read_model_dir(model_dir)
    cfg = src.config
    if src.is_classifier and not cfg.tie_word_embeddings:
        raise ArtifactError(f"{src.path} is a {src.architecture}: it has no LM head to compute logits with")
    abstract = nnx.eval_shape(lambda: CausalLM(cfg, dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(0)))
    ignore = {"score.weight"} | ({src.lm_head} if cfg.tie_word_embeddings else set())
    return _load_into(abstract, src, causal_lm_entries(cfg, src.prefix, src.lm_head), ignore, {}, sharding)
