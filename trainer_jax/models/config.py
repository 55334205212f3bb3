"""Decoder configuration read from a Hugging Face ``config.json``.

One frozen, hashable dataclass covers every supported family; the family-specific switches (q/k/v bias,
norm offsets, soft-capping, sliding windows) are plain fields, so the NNX modules read one object and the
graph definition stays hashable for ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from predictor.errors import ArtifactError

# model_type in config.json -> family implemented in trainer_jax.models (Falcon3 ships as "llama").
FAMILIES = {
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "gemma2": "gemma2",
    "phi3": "phi3",
}
# family -> Hugging Face class-name prefix (LlamaForCausalLM, LlamaForSequenceClassification, ...).
CLASS_PREFIX = {
    "llama": "Llama",
    "mistral": "Mistral",
    "qwen2": "Qwen2",
    "gemma2": "Gemma2",
    "phi3": "Phi3",
}
SUPPORTED_ARCHITECTURES = tuple(
    f"{prefix}For{kind}" for prefix in CLASS_PREFIX.values() for kind in ("CausalLM", "SequenceClassification")
)
ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    family: str  # one of FAMILIES' values; selects the key map and family quirks
    vocab_size: int  # rows of the token embedding
    hidden_size: int  # D, residual stream width
    intermediate_size: int  # F, MLP hidden width
    num_layers: int  # L, decoder blocks
    num_heads: int  # N, query heads
    num_kv_heads: int  # K, key/value heads (grouped-query attention when K < N)
    head_dim: int  # H, per-head width (Gemma-2 decouples it from D / N)
    rms_norm_eps: float  # epsilon inside every RMSNorm
    hidden_act: str  # MLP gate activation, Hugging Face name ("silu", "gelu_pytorch_tanh", ...)
    max_position_embeddings: int  # advertised context length (informational; RoPE has no table)
    rope_theta: float  # RoPE base wavelength
    rope_type: str  # "default", "linear" or "llama3"
    rope_factor: float  # linear/llama3 scaling factor (1.0 = none)
    rope_low_freq_factor: float  # llama3 only
    rope_high_freq_factor: float  # llama3 only
    rope_original_max_positions: int  # llama3 only: pre-training context length
    partial_rotary_factor: float  # share of head_dim that is rotated (Phi-3 style partial RoPE)
    qkv_bias: bool  # bias on q/k/v projections (Qwen2; Llama's attention_bias)
    o_bias: bool  # bias on the attention output projection (Llama's attention_bias)
    mlp_bias: bool  # bias on the MLP projections (Llama's mlp_bias)
    layer_windows: tuple[int | None, ...]  # per layer: sliding-window size in tokens, None = full attention
    attn_logit_softcap: float | None  # Gemma-2: cap * tanh(logits / cap) on attention logits
    final_logit_softcap: float | None  # Gemma-2: same on LM-head logits
    query_scale: float  # multiplier of q.k (head_dim**-0.5; Gemma-2: query_pre_attn_scalar**-0.5)
    norm_offset: bool  # Gemma-2: RMSNorm multiplies by (1 + w) and in fp32
    sandwich_norms: bool  # Gemma-2: extra norms after attention and after the MLP
    embed_scale: float  # multiplier of token embeddings (Gemma-2: sqrt(D); others 1.0)
    tie_word_embeddings: bool  # LM head shares the embedding matrix
    initializer_range: float  # std of fresh normal initialisation (score head from a base LM)
    pad_token_id: int | None  # pad id recorded in config.json (pooling never uses it)


def _get(d: dict[str, Any], key: str, default: Any = None) -> Any:
    value = d.get(key)
    return default if value is None else value


def _rope(d: dict[str, Any]) -> dict[str, Any]:
    """Normalise transformers 5's ``rope_parameters`` and older ``rope_theta`` + ``rope_scaling``."""
    params = dict(d.get("rope_parameters") or d.get("rope_scaling") or {})
    if params and all(isinstance(v, dict) for v in params.values()):
        raise ArtifactError(
            "per-layer RoPE parameters are not supported; supported rope types: " + ", ".join(ROPE_TYPES)
        )
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise ArtifactError(f"unsupported rope type {rope_type!r} in config.json; supported: {', '.join(ROPE_TYPES)}")
    max_pos = int(_get(d, "max_position_embeddings", 2048))
    return {
        "rope_theta": float(params.get("rope_theta", _get(d, "rope_theta", 10000.0))),
        "rope_type": rope_type,
        "rope_factor": float(params.get("factor", 1.0)),
        "rope_low_freq_factor": float(params.get("low_freq_factor", 1.0)),
        "rope_high_freq_factor": float(params.get("high_freq_factor", 4.0)),
        "rope_original_max_positions": int(params.get("original_max_position_embeddings", max_pos)),
        "partial_rotary_factor": float(params.get("partial_rotary_factor", _get(d, "partial_rotary_factor", 1.0))),
    }


def _layer_windows(d: dict[str, Any], family: str, num_layers: int) -> tuple[int | None, ...]:
    window = d.get("sliding_window")
    if family == "qwen2" and not d.get("use_sliding_window", False):
        window = None
    layer_types = d.get("layer_types")
    if layer_types is None:
        if family == "gemma2":  # even layers slide, odd layers are global
            layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(num_layers)]
        elif family == "qwen2":
            first = int(_get(d, "max_window_layers", num_layers))
            layer_types = ["sliding_attention" if i >= first else "full_attention" for i in range(num_layers)]
        else:  # Llama/Mistral/Phi-3: one window for every layer, if any
            layer_types = ["sliding_attention"] * num_layers
    if len(layer_types) != num_layers:
        raise ArtifactError(f"config.json: layer_types has {len(layer_types)} entries for {num_layers} layers")
    return tuple(int(window) if (t == "sliding_attention" and window) else None for t in layer_types)


def config_from_dict(d: dict[str, Any]) -> DecoderConfig:
    """Build a DecoderConfig from a parsed config.json; ArtifactError on an unsupported model."""
    model_type = d.get("model_type")
    if model_type not in FAMILIES:
        raise ArtifactError(
            f"unsupported model_type {model_type!r} (architectures {d.get('architectures')}); "
            f"supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    family = FAMILIES[model_type]
    try:
        hidden = int(d["hidden_size"])
        heads = int(d["num_attention_heads"])
        layers = int(d["num_hidden_layers"])
        head_dim = int(_get(d, "head_dim", hidden // heads))
        is_gemma = family == "gemma2"
        return DecoderConfig(
            family=family,
            vocab_size=int(d["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(d["intermediate_size"]),
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=int(_get(d, "num_key_value_heads", heads)),
            head_dim=head_dim,
            rms_norm_eps=float(_get(d, "rms_norm_eps", 1e-6)),
            hidden_act=str(_get(d, "hidden_activation", _get(d, "hidden_act", "silu"))),
            max_position_embeddings=int(_get(d, "max_position_embeddings", 2048)),
            **_rope(d),
            qkv_bias=family == "qwen2" or bool(d.get("attention_bias", False)),
            o_bias=family in ("llama", "mistral") and bool(d.get("attention_bias", False)),
            mlp_bias=family == "llama" and bool(d.get("mlp_bias", False)),
            layer_windows=_layer_windows(d, family, layers),
            attn_logit_softcap=d.get("attn_logit_softcapping") if is_gemma else None,
            final_logit_softcap=d.get("final_logit_softcapping") if is_gemma else None,
            query_scale=float(_get(d, "query_pre_attn_scalar", head_dim)) ** -0.5 if is_gemma else head_dim**-0.5,
            norm_offset=is_gemma,
            sandwich_norms=is_gemma,
            embed_scale=math.sqrt(hidden) if is_gemma else 1.0,
            tie_word_embeddings=bool(d.get("tie_word_embeddings", is_gemma)),
            initializer_range=float(_get(d, "initializer_range", 0.02)),
            pad_token_id=d.get("pad_token_id") if isinstance(d.get("pad_token_id"), int) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"config.json of a {model_type} model is missing or has a bad field: {exc}") from None


def supported_architecture(hf_config: dict[str, Any], where: str | Path) -> str:
    """``architectures[0]`` of a config.json, or ArtifactError when basepick cannot build it."""
    architectures = hf_config.get("architectures") or []
    arch = architectures[0] if architectures else None
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ArtifactError(f"{where}: unsupported architecture {arch!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    return arch


def read_config_json(model_dir: str | Path) -> dict[str, Any]:
    """Parse ``MODEL_DIR/config.json``; ArtifactError when the directory is not a model directory."""
    path = Path(model_dir) / "config.json"
    if not Path(model_dir).is_dir():
        raise ArtifactError(f"{model_dir} is not a directory; pass a Hugging Face model directory")
    if not path.is_file():
        raise ArtifactError(f"{model_dir} is not a model directory: config.json is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    return data
