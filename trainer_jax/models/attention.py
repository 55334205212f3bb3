"""Causal self-attention over right-padded rows, and the one place that picks its implementation.

Rows arrive packed: each row's real tokens first, then padding, with the real length per row (see
``DecoderModel.packed``). Attention is causal, masks keys at or beyond the row's length and, for
sliding-window layers, keys ``window`` or more positions back. No (B, 1, T, T) mask is ever built on
the fused path, so its memory is linear in the sequence length.

Two implementations, chosen by ``choose_attention`` (and only there):

* ``cudnn``: ``jax.nn.dot_product_attention(implementation="cudnn")``, the fused flash kernel. It needs
  an NVIDIA GPU, bf16/fp16 inputs and a head size that is a multiple of 8 and at most 128 (256 from
  Hopper on).
* ``xla``: the same call with ``implementation="xla"``, or, for Gemma-2's logit soft-capping (which the
  fused kernel lacks), an explicit einsum. It materialises one layer's (B, N, T, S) scores at a time
  (remat keeps it to one layer). Used on CPU/TPU, in fp32, and wherever cuDNN cannot serve.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from trainer_jax.models.config import DecoderConfig

IMPLEMENTATIONS = ("cudnn", "xla")


@dataclasses.dataclass(frozen=True)
class AttentionChoice:
    implementation: str  # "cudnn" or "xla"
    reason: str  # why, in a few words, for the stderr note

    def describe(self) -> str:
        name = "cuDNN flash attention" if self.implementation == "cudnn" else "XLA attention"
        return f"attention: {name} ({self.reason})"


def _gpu_head_dim_limit() -> int:
    """Largest head size cuDNN's flash kernel takes on this GPU: 256 from Hopper (sm_90) on, else 128."""
    try:
        capability = jax.devices("gpu")[0].compute_capability
        return 256 if tuple(int(x) for x in capability.split(".")) >= (9, 0) else 128
    except (RuntimeError, AttributeError, ValueError):
        return 128


def choose_attention(cfg: DecoderConfig, dtype, platform: str | None = None) -> AttentionChoice:
    """The attention implementation for this model, compute dtype and backend (default: JAX's)."""
    platform = platform or jax.default_backend()
    if platform != "gpu":
        return AttentionChoice("xla", f"{platform} backend")
    if cfg.attn_logit_softcap is not None:
        return AttentionChoice("xla", "logit soft-capping is not in the fused kernel")
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
        return AttentionChoice("xla", f"{jnp.dtype(dtype).name} compute; the fused kernel takes bf16/fp16")
    limit = _gpu_head_dim_limit()
    if cfg.head_dim % 8 or cfg.head_dim > limit:
        return AttentionChoice("xla", f"head size {cfg.head_dim} (the fused kernel takes multiples of 8 up to {limit})")
    return AttentionChoice("cudnn", f"GPU, {jnp.dtype(dtype).name}, head size {cfg.head_dim}")


def attend(q, k, v, lengths, *, cfg: DecoderConfig, window: int | None, implementation: str) -> jnp.ndarray:
    """q (B, T, N, H), k/v (B, T, K, H), lengths (B,) int32 -> (B, T, N, H); rows beyond a length: don't care."""
    if cfg.attn_logit_softcap is not None:
        return _softcapped(q, k, v, lengths, cfg, window)
    return jax.nn.dot_product_attention(
        q, k, v, scale=cfg.query_scale, is_causal=True,
        query_seq_lengths=lengths if implementation == "cudnn" else None,
        key_value_seq_lengths=lengths,
        local_window_size=None if window is None else (window - 1, 0),  # keys i-window+1 .. i
        implementation=implementation,
    )


def key_mask(lengths: jnp.ndarray, t: int, window: int | None) -> jnp.ndarray:
    """(B, 1, 1, T, S) bool: causal, real keys only, within the window; for the explicit XLA path."""
    q = jnp.arange(t)[:, None]
    s = jnp.arange(t)[None, :]
    allowed = (s <= q)[None] & (s[None] < lengths[:, None, None])  # (B, T, S)
    if window is not None:
        allowed = allowed & (q - s < window)[None]
    return allowed[:, None, None]


def _softcapped(q, k, v, lengths, cfg: DecoderConfig, window: int | None) -> jnp.ndarray:
    """Gemma-2's cap * tanh(logits / cap), which the fused kernel and jax.nn.dot_product_attention lack."""
    b, t, n, h = q.shape
    g = n // cfg.num_kv_heads
    q = q.reshape(b, t, cfg.num_kv_heads, g, h)  # (B, T, K, G, H) query groups per kv head
    logits = jnp.einsum("btkgh,bskh->bkgts", q, k).astype(jnp.float32) * cfg.query_scale  # (B, K, G, T, S)
    cap = cfg.attn_logit_softcap
    logits = jnp.tanh(logits / cap) * cap
    logits = jnp.where(key_mask(lengths, t, window), logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, v)  # (B, T, K, G, H)
    return out.reshape(b, t, n, h)
