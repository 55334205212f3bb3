"""Rotary position embeddings (default, linear and llama3 scaling), half-rotation layout as in HF."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from trainer_jax.models.config import DecoderConfig, Rope


def rotary_dim(config: DecoderConfig) -> int:
    """Number of leading head dimensions that are rotated (all of them unless partial RoPE)."""
    return int(config.head_dim * config.partial_rotary_factor)


def inverse_frequencies(rope: Rope, dim: int) -> np.ndarray:
    """(dim/2,) float32 inverse frequencies after the configured scaling, computed like transformers."""
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)  # (R/2,)
    inv_freq = (np.float32(1.0) / (np.float32(rope.theta) ** exponents)).astype(np.float32)
    if rope.kind == "linear":
        return (inv_freq / np.float32(rope.factor)).astype(np.float32)
    if rope.kind == "llama3":
        factor = rope.factor
        low, high = rope.low_freq_factor, rope.high_freq_factor
        old_len = rope.original_max_positions
        wavelen = 2 * math.pi / inv_freq  # (R/2,) tokens per turn
        scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)  # long waves slowed down
        smooth = (old_len / wavelen - low) / (high - low)  # 0..1 between the two cut-offs
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
        return np.where(medium, smoothed, scaled).astype(np.float32)
    return inv_freq


def rope_tables(config: DecoderConfig, ropes: tuple[Rope | None, ...], t: int, dtype) -> tuple[jnp.ndarray, ...]:
    """cos, sin of shape (len(ropes), 1, T, R) for positions 0..T-1; angles computed in float32.

    A ``None`` rope is the identity (cos 1, sin 0): ``apply_rope`` then returns its input exactly, which is
    how SmolLM3's NoPE layers share the scanned block with the rotated ones.
    """
    dim = rotary_dim(config)
    positions = jnp.arange(t, dtype=jnp.float32)  # (T,) packed rows: position = slot
    cos, sin = [], []
    for rope in ropes:
        if rope is None:
            cos.append(jnp.ones((t, dim), jnp.float32))
            sin.append(jnp.zeros((t, dim), jnp.float32))
            continue
        angles = positions[:, None] * jnp.asarray(inverse_frequencies(rope, dim))  # (T, R/2) radians
        angles = jnp.concatenate([angles, angles], axis=-1)  # (T, R)
        cos.append(jnp.cos(angles))
        sin.append(jnp.sin(angles))
    return jnp.stack(cos)[:, None].astype(dtype), jnp.stack(sin)[:, None].astype(dtype)  # (P, 1, T, R) each


def apply_rope(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
    """Rotate the first R dims of x (B, T, heads, H) by position (cos/sin (B or 1, T, R)); the rest passes."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated = jnp.concatenate([-x_rot[..., half:], x_rot[..., :half]], axis=-1)  # rotate_half
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # (B, T, 1, R) broadcast over heads
    out = x_rot * cos + rotated * sin
    return jnp.concatenate([out, x_pass], axis=-1) if x_pass.shape[-1] else out
