"""Explicit map between Hugging Face tensor names and NNX parameter paths, per family.

Each ``Entry`` says which HF tensor feeds one NNX parameter (or, for the stacked decoder layers, one
index of its leading layer axis), whether it is transposed (torch Linear stores (out, in);
``nnx.Linear`` keeps (in, out)) and, for fused tensors (Phi-3's ``qkv_proj`` and ``gate_up_proj``),
which rows of the HF tensor it takes. Import reads entries forward; export concatenates the row slices
of each HF name back together in order.
"""

from __future__ import annotations

import dataclasses

from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.decoder import layer_period

Path = tuple  # NNX parameter path, e.g. ("model", "layers", 0, "self_attn", "q_proj", "kernel")


@dataclasses.dataclass(frozen=True)
class Entry:
    path: Path  # NNX parameter path
    hf_key: str  # tensor name in the safetensors files
    transpose: bool  # True for Linear kernels
    rows: tuple[int, int] | None = None  # [start, stop) rows of a fused HF tensor, None = whole tensor
    layer: int | None = None  # index on the leading (stacked layers) axis of the NNX parameter, None = unstacked


def _linear(path: Path, key: str, bias: bool, rows: tuple[int, int] | None = None) -> list[Entry]:
    out = [Entry((*path, "kernel"), f"{key}.weight", True, rows)]
    if bias:
        out.append(Entry((*path, "bias"), f"{key}.bias", False, rows))
    return out


def _norm(path: Path, key: str) -> Entry:
    return Entry((*path, "weight"), f"{key}.weight", False)


def _block(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    entries = [_norm((*path, "attn_norm"), f"{key}.input_layernorm")]
    entries += _attention(cfg, (*path, "self_attn"), f"{key}.self_attn")
    if cfg.sandwich_norms:  # Gemma-2 names: post_attention_layernorm is the norm AFTER attention
        entries.append(_norm((*path, "post_attn_norm"), f"{key}.post_attention_layernorm"))
        entries.append(_norm((*path, "mlp_norm"), f"{key}.pre_feedforward_layernorm"))
        entries.append(_norm((*path, "post_mlp_norm"), f"{key}.post_feedforward_layernorm"))
    else:  # Llama names: post_attention_layernorm is the norm BEFORE the MLP
        entries.append(_norm((*path, "mlp_norm"), f"{key}.post_attention_layernorm"))
    return entries + _mlp(cfg, (*path, "mlp"), f"{key}.mlp")


def _attention(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    if cfg.family == "phi3":  # one fused (N*H + 2*K*H, D) qkv_proj
        q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
        fused = f"{key}.qkv_proj"
        return [
            *_linear((*path, "q_proj"), fused, False, (0, q)),
            *_linear((*path, "k_proj"), fused, False, (q, q + kv)),
            *_linear((*path, "v_proj"), fused, False, (q + kv, q + 2 * kv)),
            *_linear((*path, "o_proj"), f"{key}.o_proj", False),
        ]
    return [
        *_linear((*path, "q_proj"), f"{key}.q_proj", cfg.qkv_bias),
        *_linear((*path, "k_proj"), f"{key}.k_proj", cfg.qkv_bias),
        *_linear((*path, "v_proj"), f"{key}.v_proj", cfg.qkv_bias),
        *_linear((*path, "o_proj"), f"{key}.o_proj", cfg.o_bias),
    ]


def _mlp(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    if cfg.family == "phi3":  # one fused (2*F, D) gate_up_proj, gate rows first
        f = cfg.intermediate_size
        return [
            *_linear((*path, "gate_proj"), f"{key}.gate_up_proj", False, (0, f)),
            *_linear((*path, "up_proj"), f"{key}.gate_up_proj", False, (f, 2 * f)),
            *_linear((*path, "down_proj"), f"{key}.down_proj", False),
        ]
    names = ("gate_proj", "up_proj", "down_proj")
    return [entry for name in names for entry in _linear((*path, name), f"{key}.{name}", cfg.mlp_bias)]


def backbone_entries(cfg: DecoderConfig, nnx_prefix: Path = ("model",), hf_prefix: str = "model") -> list[Entry]:
    """Entries of embeddings, blocks and final norm (HF ``*Model`` under ``model.``)."""
    entries = [Entry((*nnx_prefix, "embed_tokens", "embedding"), f"{hf_prefix}.embed_tokens.weight", False)]
    period = layer_period(cfg.layer_windows)
    for i in range(cfg.num_layers):  # layer i: block i % period of the stack, at index i // period
        block = _block(cfg, (*nnx_prefix, "layers", i % period), f"{hf_prefix}.layers.{i}")
        entries += [dataclasses.replace(e, layer=i // period) for e in block]
    entries.append(_norm((*nnx_prefix, "norm"), f"{hf_prefix}.norm"))
    return entries


def causal_lm_entries(cfg: DecoderConfig) -> list[Entry]:
    """``CausalLM``: backbone plus ``lm_head.weight`` unless the head is tied to the embedding."""
    entries = backbone_entries(cfg)
    if not cfg.tie_word_embeddings:
        entries.append(Entry(("lm_head", "kernel"), "lm_head.weight", True))
    return entries


def reward_entries(cfg: DecoderConfig) -> list[Entry]:
    """``RewardModel``: backbone plus ``score.weight`` (HF ``*ForSequenceClassification``)."""
    return [*backbone_entries(cfg), Entry(("score", "kernel"), "score.weight", True)]
