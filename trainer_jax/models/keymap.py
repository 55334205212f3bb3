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

Path = tuple  # NNX parameter path, e.g. ("model", "layers", "self_attn", "q_proj", "kernel")


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


def _norm(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    out = [Entry((*path, "weight"), f"{key}.weight", False)]
    if cfg.norm.startswith("layer"):  # LayerNorm (StableLM, Nemotron) has a bias
        out.append(Entry((*path, "bias"), f"{key}.bias", False))
    return out


# Block norm -> HF name, by placement. Llama's post_attention_layernorm is the norm BEFORE the MLP; in
# Gemma 2/3 and OLMo 2 the same name is the norm AFTER attention.
_BLOCK_NORMS = {
    "pre": {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"},
    "sandwich": {"attn_norm": "input_layernorm", "post_attn_norm": "post_attention_layernorm",
                 "mlp_norm": "pre_feedforward_layernorm", "post_mlp_norm": "post_feedforward_layernorm"},
    "post": {"post_attn_norm": "post_attention_layernorm", "post_mlp_norm": "post_feedforward_layernorm"},
}


def _block(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    norms = _BLOCK_NORMS[cfg.block_norms].items()
    entries = [e for name, hf in norms for e in _norm(cfg, (*path, name), f"{key}.{hf}")]
    entries += _attention(cfg, (*path, "self_attn"), f"{key}.self_attn")
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
    entries = [
        *_linear((*path, "q_proj"), f"{key}.q_proj", cfg.qkv_bias),
        *_linear((*path, "k_proj"), f"{key}.k_proj", cfg.qkv_bias),
        *_linear((*path, "v_proj"), f"{key}.v_proj", cfg.qkv_bias),
        *_linear((*path, "o_proj"), f"{key}.o_proj", cfg.o_bias),
    ]
    if cfg.qk_norm is not None:  # Qwen3, Gemma 3, OLMo 2
        entries += [*_norm(cfg, (*path, "q_norm"), f"{key}.q_norm"), *_norm(cfg, (*path, "k_norm"), f"{key}.k_norm")]
    return entries


def _mlp(cfg: DecoderConfig, path: Path, key: str) -> list[Entry]:
    if cfg.family == "phi3":  # one fused (2*F, D) gate_up_proj, gate rows first
        f = cfg.intermediate_size
        return [
            *_linear((*path, "gate_proj"), f"{key}.gate_up_proj", False, (0, f)),
            *_linear((*path, "up_proj"), f"{key}.gate_up_proj", False, (f, 2 * f)),
            *_linear((*path, "down_proj"), f"{key}.down_proj", False),
        ]
    names = ("gate_proj", "up_proj", "down_proj") if cfg.gated_mlp else ("up_proj", "down_proj")
    return [entry for name in names for entry in _linear((*path, name), f"{key}.{name}", cfg.mlp_bias)]


def backbone_entries(cfg: DecoderConfig, nnx_prefix: Path = ("model",), hf_prefix: str = "model") -> list[Entry]:
    """Entries of embeddings, blocks and final norm (HF ``*Model``, under ``model.``; Gemma 3's multimodal
    checkpoints keep it under ``model.language_model.`` or, as published, ``language_model.model.``)."""
    entries = [Entry((*nnx_prefix, "embed_tokens", "embedding"), f"{hf_prefix}.embed_tokens.weight", False)]
    for i in range(cfg.num_layers):  # layer i: index i of the stacked block
        block = _block(cfg, (*nnx_prefix, "layers"), f"{hf_prefix}.layers.{i}")
        entries += [dataclasses.replace(e, layer=i) for e in block]
    return entries + _norm(cfg, (*nnx_prefix, "norm"), f"{hf_prefix}.norm")


def causal_lm_entries(cfg: DecoderConfig, hf_prefix: str = "model", lm_head: str = "lm_head.weight") -> list[Entry]:
    """``CausalLM``: backbone plus the LM head unless it is tied to the embedding."""
    entries = backbone_entries(cfg, hf_prefix=hf_prefix)
    if not cfg.tie_word_embeddings:
        entries.append(Entry(("lm_head", "kernel"), lm_head, True))
    return entries


def reward_entries(cfg: DecoderConfig, hf_prefix: str = "model") -> list[Entry]:
    """``RewardModel``: backbone plus ``score.weight`` (HF ``*ForSequenceClassification``)."""
    return [*backbone_entries(cfg, hf_prefix=hf_prefix), Entry(("score", "kernel"), "score.weight", True)]
