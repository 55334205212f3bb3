"""Rotary position embeddings (default, linear and llama3 scaling), half-rotation layout as in HF."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from trainer_jax.models.config import DecoderConfig


def rotary_dim(config: DecoderConfig) -> int:
    """Number of leading head dimensions that are rotated (all of them unless partial RoPE)."""
    return int(config.head_dim * config.partial_rotary_factor)


def inverse_frequencies(config: DecoderConfig) -> np.ndarray:
    """(R/2,) float32 inverse frequencies after the configured scaling, computed like transformers."""
    dim = rotary_dim(config)
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)  # (R/2,)
    inv_freq = (np.float32(1.0) / (np.float32(config.rope_theta) ** exponents)).astype(np.float32)
    if config.rope_type == "linear":
        return (inv_freq / np.float32(config.rope_factor)).astype(np.float32)
    if config.rope_type == "llama3":
        factor = config.rope_factor
        low, high = config.rope_low_freq_factor, config.rope_high_freq_factor
        old_len = config.rope_original_max_positions
        wavelen = 2 * math.pi / inv_freq  # (R/2,) tokens per turn
        scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)  # long waves slowed down
        smooth = (old_len / wavelen - low) / (high - low)  # 0..1 between the two cut-offs
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
        return np.where(medium, smoothed, scaled).astype(np.float32)
    return inv_freq


def rope_tables(config: DecoderConfig, positions: jnp.ndarray, dtype) -> tuple[jnp.ndarray, jnp.ndarray]:
    """cos, sin of shape (B, T, R) for integer positions (B, T); angles computed in float32."""
    inv_freq = jnp.asarray(inverse_frequencies(config))  # (R/2,)
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # (B, T, R/2) radians
    angles = jnp.concatenate([angles, angles], axis=-1)  # (B, T, R)
    return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


def apply_rope(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
    """Rotate the first R dims of x (B, T, heads, H) by position; the rest passes through."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated = jnp.concatenate([-x_rot[..., half:], x_rot[..., :half]], axis=-1)  # rotate_half
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # (B, T, 1, R) broadcast over heads
    out = x_rot * cos + rotated * sin
    return jnp.concatenate([out, x_pass], axis=-1) if x_pass.shape[-1] else out
