"""Decoder configuration read from a Hugging Face ``config.json``.

One frozen, hashable dataclass covers every supported family (``trainer_jax.models.families``); the
family-specific switches (norms, q/k norms, biases, soft-capping, per-layer windows and RoPE) are plain
fields, so the NNX modules read one object and the graph definition stays hashable for ``jax.jit``.

A config.json is first completed by transformers' own config class of its model_type (torch-free): the
published Gemma 3 checkpoints, for one, leave most of their text decoder's fields to those defaults. The
completed fields are then checked against each other; a config this decoder cannot build faithfully
(mixture of experts, contradictory sizes, switches it lacks) is refused with one ArtifactError line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

from predictor.errors import ArtifactError
from trainer_jax.models.families import (
    EXPERT_KEYS,
    FAMILIES,
    MODEL_TYPES,
    MOE_TYPES,
    MULTIMODAL,
    SUPPORTED_ARCHITECTURES,
)

ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class Rope:
    theta: float  # base wavelength
    kind: str  # "default", "linear" or "llama3"
    factor: float  # linear/llama3 scaling factor (1.0 = none)
    low_freq_factor: float  # llama3 only
    high_freq_factor: float  # llama3 only
    original_max_positions: int  # llama3 only: pre-training context length


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    family: str  # a key of families.FAMILIES; selects the key map and the exported class
    vocab_size: int  # rows of the token embedding
    hidden_size: int  # D, residual stream width
    intermediate_size: int  # F, MLP hidden width
    num_layers: int  # L, decoder blocks
    num_heads: int  # N, query heads
    num_kv_heads: int  # K, key/value heads (grouped-query attention when K < N)
    head_dim: int  # H, per-head width (Gemma, Qwen3: decoupled from D / N)
    norm: str  # families.Family.norm: "rms", "rms_f32", "rms_1p", "layer" or "layer_1p"
    norm_eps: float  # epsilon inside every norm
    block_norms: str  # families.Family.block_norms: "pre", "sandwich" or "post"
    qk_norm: str | None  # families.Family.qk_norm: "head", "proj" or None
    gated_mlp: bool  # families.Family.gated_mlp
    hidden_act: str  # MLP activation, Hugging Face name ("silu", "gelu_pytorch_tanh", "relu2", ...)
    max_position_embeddings: int  # advertised context length (informational; RoPE has no table)
    partial_rotary_factor: float  # share of head_dim that is rotated (Phi-3, StableLM, Nemotron)
    layer_ropes: tuple[Rope | None, ...]  # per layer: its RoPE (Gemma 3: local or global base), None = no RoPE
    qkv_bias: bool  # bias on q/k/v projections (Qwen2, StableLM; attention_bias elsewhere)
    o_bias: bool  # bias on the attention output projection (attention_bias)
    mlp_bias: bool  # bias on the MLP projections (mlp_bias)
    layer_windows: tuple[int | None, ...]  # per layer: sliding-window size in tokens, None = full attention
    attn_logit_softcap: float | None  # Gemma 2: cap * tanh(logits / cap) on attention logits
    final_logit_softcap: float | None  # Gemma 2: same on LM-head logits
    query_scale: float  # multiplier of q.k (head_dim**-0.5; Gemma 2/3: query_pre_attn_scalar**-0.5)
    embed_scale: float  # multiplier of token embeddings (Gemma: sqrt(D); others 1.0)
    tie_word_embeddings: bool  # LM head shares the embedding matrix
    initializer_range: float  # std of fresh normal initialisation (score head from a base LM)
    pad_token_id: int | None  # pad id recorded in config.json (pooling never uses it)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _completed(d: dict[str, Any]) -> dict[str, Any]:
    """config.json with every field transformers' config class of its model_type fills in (no torch)."""
    from transformers import CONFIG_MAPPING
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its notes on legacy fields would break the one-line error contract
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CONFIG_MAPPING[d["model_type"]].from_dict(d).to_dict()
    except Exception as exc:  # transformers' validators raise several error types, all a bad config.json
        raise ArtifactError(f"config.json of a {d['model_type']} model is not valid: {_one_line(exc)}") from None
    finally:
        hf_logging.set_verbosity(level)


def _refuse_moe(d: dict[str, Any]) -> None:
    model_type = d.get("model_type")
    if model_type in MOE_TYPES:
        raise ArtifactError(f"mixture-of-experts models are not supported (model_type {model_type!r}); "
                            f"basepick trains dense decoders: {', '.join(SUPPORTED_ARCHITECTURES)}")
    experts = {k: d[k] for k in EXPERT_KEYS if isinstance(d.get(k), int) and d[k] > 0}
    if experts:
        raise ArtifactError(f"config.json of a dense {model_type} model declares experts "
                            f"({', '.join(f'{k}={v}' for k, v in experts.items())}); mixture-of-experts models "
                            "are not supported")


def decoder_dict(d: dict[str, Any]) -> dict[str, Any]:
    """The decoder's own completed config: config.json, or the text config inside a multimodal one."""
    model_type = d.get("model_type")
    _refuse_moe(d)
    if model_type not in MODEL_TYPES:
        raise ArtifactError(
            f"unsupported model_type {model_type!r} (architectures {d.get('architectures')}); "
            f"supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    full = _completed(d)
    return full[MULTIMODAL[model_type]] if model_type in MULTIMODAL else full


def _rope(params: dict[str, Any], max_pos: int) -> Rope:
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise ArtifactError(f"unsupported rope type {kind!r} in config.json; supported: {', '.join(ROPE_TYPES)}")
    rope = Rope(theta=float(params.get("rope_theta", 10000.0)), kind=kind, factor=float(params.get("factor", 1.0)),
                low_freq_factor=float(params.get("low_freq_factor", 1.0)),
                high_freq_factor=float(params.get("high_freq_factor", 4.0)),
                original_max_positions=int(params.get("original_max_position_embeddings", max_pos)))
    if not (rope.theta > 0 and rope.factor > 0):
        raise ArtifactError(f"config.json: RoPE needs rope_theta and factor > 0, not {params}")
    return rope


def _layer_ropes(d: dict[str, Any], layer_types: list[str], max_pos: int) -> tuple[Rope | None, ...]:
    """Per layer: transformers 5's rope_parameters, one for all layers or one per layer type (Gemma 3,
    OLMo 3); SmolLM3's ``no_rope_layers`` (1 = RoPE, 0 = none) switches it off."""
    params = dict(d.get("rope_parameters") or {})
    if params and all(isinstance(v, dict) for v in params.values()):
        missing = sorted(set(layer_types) - set(params))
        if missing:
            raise ArtifactError(f"config.json: rope_parameters has no entry for layer type(s) {', '.join(missing)}")
        by_type = {t: _rope(p, max_pos) for t, p in params.items()}
        ropes = [by_type[t] for t in layer_types]
    else:
        ropes = [_rope(params, max_pos)] * len(layer_types)
    use = d.get("no_rope_layers") or [1] * len(layer_types)
    if len(use) != len(layer_types):
        raise ArtifactError(f"config.json: no_rope_layers has {len(use)} entries for {len(layer_types)} layers")
    return tuple(rope if on else None for rope, on in zip(ropes, use))


def _layer_types(d: dict[str, Any], layers: int) -> list[str]:
    """transformers' layer_types (completed for the families that have them); else every layer alike."""
    layer_types = d.get("layer_types") or ["sliding_attention"] * layers
    if len(layer_types) != layers:
        raise ArtifactError(f"config.json: layer_types has {len(layer_types)} entries for {layers} layers")
    unknown = sorted(set(layer_types) - {"sliding_attention", "full_attention"})
    if unknown:
        raise ArtifactError(f"config.json: unsupported layer type(s) {', '.join(unknown)}")
    return layer_types


def _biases(family: str, d: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(q/k/v, output projection, MLP) biases, as each family's transformers modules build them."""
    attention = bool(d.get("attention_bias", False))
    if family == "qwen2":
        return True, False, False
    if family == "stablelm":
        return bool(d.get("use_qkv_bias", False)), False, False
    if family in ("mistral", "ministral", "phi3"):
        return False, False, False
    return attention, attention, family in ("llama", "smollm3", "nemotron") and bool(d.get("mlp_bias", False))


def _refuse_switches(family: str, d: dict[str, Any]) -> None:
    """Switches of a family this decoder does not implement: refused, never ignored."""
    unsupported = {"stablelm": ("qk_layernorm", "use_parallel_residual"), "gemma3": ("use_bidirectional_attention",),
                   "gemma": ("use_bidirectional_attention",)}.get(family, ())
    on = [k for k in unsupported if d.get(k)]
    if on:
        raise ArtifactError(f"config.json of a {family} model sets {', '.join(on)}, which basepick does not implement")


def _check(cfg: DecoderConfig, explicit_head_dim: bool) -> None:
    """ArtifactError when the fields contradict each other or a size is not positive."""
    sizes = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
             "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
             "num_key_value_heads": cfg.num_kv_heads, "head_dim": cfg.head_dim}
    bad = [f"{k}={v}" for k, v in sizes.items() if v <= 0]
    bad += [f"sliding_window={w}" for w in set(cfg.layer_windows) if w is not None and w <= 0]
    if bad:
        raise ArtifactError(f"config.json: sizes must be positive ({', '.join(bad)})")
    if cfg.num_heads % cfg.num_kv_heads:
        raise ArtifactError(f"config.json: num_attention_heads {cfg.num_heads} is not a multiple of "
                            f"num_key_value_heads {cfg.num_kv_heads}")
    if not explicit_head_dim and cfg.hidden_size % cfg.num_heads:
        raise ArtifactError(f"config.json: hidden_size {cfg.hidden_size} is not a multiple of "
                            f"num_attention_heads {cfg.num_heads}")
    rotary = int(cfg.head_dim * cfg.partial_rotary_factor)
    if not 0 < cfg.partial_rotary_factor <= 1 or rotary % 2:
        raise ArtifactError(f"config.json: partial_rotary_factor {cfg.partial_rotary_factor} of head_dim "
                            f"{cfg.head_dim} does not give an even number of rotated dimensions")
    if not cfg.norm_eps > 0:
        raise ArtifactError(f"config.json: the norm epsilon must be positive, not {cfg.norm_eps}")


def config_from_dict(d: dict[str, Any]) -> DecoderConfig:
    """Build a DecoderConfig from a parsed config.json; ArtifactError on an unsupported or invalid model."""
    d = decoder_dict(d)
    family = MODEL_TYPES[d["model_type"]]
    spec = FAMILIES[family]
    _refuse_switches(family, d)
    try:
        hidden, heads, layers = int(d["hidden_size"]), int(d["num_attention_heads"]), int(d["num_hidden_layers"])
        explicit_head_dim = family != "stablelm" and d.get("head_dim") is not None  # StableLM ignores head_dim
        head_dim = int(d["head_dim"]) if explicit_head_dim else hidden // max(heads, 1)
        max_pos = int(d.get("max_position_embeddings") or 2048)
        layer_types = _layer_types(d, layers)
        window = d.get("sliding_window") if d.get("use_sliding_window", True) is not False else None
        rope_params = d.get("rope_parameters") or {}
        flat = rope_params if not all(isinstance(v, dict) for v in rope_params.values()) else {}
        qkv_bias, o_bias, mlp_bias = _biases(family, d)
        eps = next((d[k] for k in ("rms_norm_eps", "layer_norm_eps", "norm_eps") if d.get(k) is not None), 1e-6)
        cfg = DecoderConfig(
            family=family,
            vocab_size=int(d["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(d["intermediate_size"]),
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=int(d.get("num_key_value_heads") or heads),
            head_dim=head_dim,
            norm=spec.norm,
            norm_eps=float(eps),
            block_norms=spec.block_norms,
            qk_norm=spec.qk_norm,
            gated_mlp=spec.gated_mlp,
            hidden_act=str(d.get("hidden_activation") or d.get("hidden_act") or "silu"),
            max_position_embeddings=max_pos,
            partial_rotary_factor=float(flat.get("partial_rotary_factor", d.get("partial_rotary_factor") or 1.0)),
            layer_ropes=_layer_ropes(d, layer_types, max_pos),
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            mlp_bias=mlp_bias,
            layer_windows=tuple(int(window) if t == "sliding_attention" and window is not None else None
                                for t in layer_types),
            attn_logit_softcap=d.get("attn_logit_softcapping"),
            final_logit_softcap=d.get("final_logit_softcapping"),
            query_scale=float(d.get("query_pre_attn_scalar") or head_dim) ** -0.5,
            embed_scale=math.sqrt(hidden) if spec.sqrt_d_embeddings else 1.0,
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            initializer_range=float(d.get("initializer_range") or 0.02),
            pad_token_id=d.get("pad_token_id") if isinstance(d.get("pad_token_id"), int) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"config.json of a {d['model_type']} model is missing or has a bad field: {exc}") from None
    _check(cfg, explicit_head_dim)
    return cfg


def supported_architecture(hf_config: dict[str, Any], where: str | Path) -> str:
    """``architectures[0]`` of a config.json, or ArtifactError when basepick cannot build it."""
    _refuse_moe(hf_config)
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
