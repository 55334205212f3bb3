"""The one decoder block of every family: norms, grouped-query attention with RoPE, MLP.

Families differ only by ``DecoderConfig`` switches: the norm kind (``norm``), where the block's norms sit
(``block_norms``: pre, sandwich, post), q/k norms (``qk_norm``), biases, a gated or plain MLP. What differs
from layer to layer (sliding window or not, which RoPE or none) is not a switch of the block but an index
fed to it per layer (``layer_kinds``), so all layers share one stacked block and one ``jax.lax.scan``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from trainer_jax.models.attention import attend
from trainer_jax.models.config import DecoderConfig, Rope
from trainer_jax.models.rope import apply_rope

_ACTIVATIONS = {
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
    "relu2": lambda x: jnp.square(jax.nn.relu(x)),  # Nemotron's squared ReLU
}


def layer_kinds(cfg: DecoderConfig) -> tuple[tuple[int | None, ...], tuple[Rope | None, ...], np.ndarray, np.ndarray]:
    """The distinct windows and RoPEs of the layers, and each layer's index into them: (windows, ropes,
    window_index (L,) int32, rope_index (L,) int32). Gemma 3: windows (512, None), ropes (local, global)."""
    windows = tuple(dict.fromkeys(cfg.layer_windows))
    ropes = tuple(dict.fromkeys(cfg.layer_ropes))
    window_index = np.array([windows.index(w) for w in cfg.layer_windows], np.int32)
    rope_index = np.array([ropes.index(r) for r in cfg.layer_ropes], np.int32)
    return windows, ropes, window_index, rope_index


class Norm(nnx.Module):
    """RMSNorm or LayerNorm as transformers computes them: statistics in fp32.

    ``rms`` (Llama) casts back before scaling by w; ``rms_f32`` (OLMo 2) scales in fp32; ``rms_1p``
    (Gemma) scales by (1 + w) in fp32; ``layer`` (StableLM) centres first and adds a bias; ``layer_1p``
    (Nemotron) does both with (1 + w). Not ``nnx.RMSNorm``/``nnx.LayerNorm``: they lack the (1 + w) forms
    and cast at other points, which breaks parity with the checkpoints' reference implementation.
    """

    def __init__(self, dim: int, *, kind: str, eps: float, param_dtype):
        self.kind = kind
        self.eps = eps
        self.offset = kind.endswith("_1p")
        self.weight = nnx.Param((jnp.zeros if self.offset else jnp.ones)((dim,), dtype=param_dtype))
        self.bias = nnx.Param(jnp.zeros((dim,), dtype=param_dtype)) if kind.startswith("layer") else None

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x32 = x.astype(jnp.float32)
        if self.bias is not None:
            x32 = x32 - jnp.mean(x32, axis=-1, keepdims=True)  # (..., D) centred
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)  # (..., D)
        w = self.weight[...]
        if self.kind == "rms":
            return w.astype(x.dtype) * normed.astype(x.dtype)
        out = normed * (w.astype(jnp.float32) + (1.0 if self.offset else 0.0))
        if self.bias is not None:
            out = out + self.bias[...].astype(jnp.float32)
        return out.astype(x.dtype)


def linear(cfg: DecoderConfig, n_in: int, n_out: int, bias: bool, dtype, param_dtype, rngs) -> nnx.Linear:
    init = nnx.initializers.normal(cfg.initializer_range)
    return nnx.Linear(
        n_in, n_out, use_bias=bias, dtype=dtype, param_dtype=param_dtype, kernel_init=init, rngs=rngs
    )


class Attention(nnx.Module):
    """Grouped-query self-attention: optional q/k norms, RoPE, per-layer sliding window, soft-capping."""

    def __init__(self, cfg: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.cfg = cfg
        d, n, k, h = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = linear(cfg, d, n * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.k_proj = linear(cfg, d, k * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.v_proj = linear(cfg, d, k * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.o_proj = linear(cfg, n * h, d, cfg.o_bias, dtype, param_dtype, rngs)
        if cfg.qk_norm is not None:  # "head": over H, shared by the heads; "proj": over all N*H (K*H) at once
            per_head = cfg.qk_norm == "head"
            norm = dict(kind=cfg.norm, eps=cfg.norm_eps, param_dtype=param_dtype)
            self.q_norm = Norm(h if per_head else n * h, **norm)
            self.k_norm = Norm(h if per_head else k * h, **norm)

    def __call__(self, x, cos, sin, lengths, window_index, *, implementation: str) -> jnp.ndarray:
        """x (B, T, D) packed rows; cos/sin (1, T, R); lengths (B,) int32; window_index () int32."""
        cfg = self.cfg
        b, t, _ = x.shape
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # (B, T, N*H), (B, T, K*H) x2
        if cfg.qk_norm == "proj":
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.reshape(b, t, cfg.num_heads, cfg.head_dim)  # (B, T, N, H)
        k = k.reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        v = v.reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        if cfg.qk_norm == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        windows = layer_kinds(cfg)[0]
        # One branch per distinct window (at most two): compiled once, whatever the depth; one branch alone
        # is called directly.
        branches = [lambda q, k, v, w=w: attend(q, k, v, lengths, cfg=cfg, window=w, implementation=implementation)
                    for w in windows]
        out = jax.lax.switch(window_index, branches, q, k, v)  # (B, T, N, H)
        return self.o_proj(out.reshape(b, t, cfg.num_heads * cfg.head_dim))


class MLP(nnx.Module):
    """Gated MLP down(act(gate(x)) * up(x)), or plain down(act(up(x))) (Nemotron)."""

    def __init__(self, cfg: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.act = cfg.hidden_act
        d, f = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = linear(cfg, d, f, cfg.mlp_bias, dtype, param_dtype, rngs) if cfg.gated_mlp else None
        self.up_proj = linear(cfg, d, f, cfg.mlp_bias, dtype, param_dtype, rngs)
        self.down_proj = linear(cfg, f, d, cfg.mlp_bias, dtype, param_dtype, rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        act = _ACTIVATIONS[self.act]
        if self.gate_proj is None:
            return self.down_proj(act(self.up_proj(x)))
        return self.down_proj(act(self.gate_proj(x)) * self.up_proj(x))


class Block(nnx.Module):
    """Residual block; its norms sit before (pre), before and after (sandwich) or after (post) each part."""

    def __init__(self, cfg: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.pre = cfg.block_norms in ("pre", "sandwich")
        self.post = cfg.block_norms in ("sandwich", "post")
        norm = dict(kind=cfg.norm, eps=cfg.norm_eps, param_dtype=param_dtype)
        if self.pre:
            self.attn_norm = Norm(cfg.hidden_size, **norm)
            self.mlp_norm = Norm(cfg.hidden_size, **norm)
        if self.post:
            self.post_attn_norm = Norm(cfg.hidden_size, **norm)
            self.post_mlp_norm = Norm(cfg.hidden_size, **norm)
        self.self_attn = Attention(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.mlp = MLP(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x, cos, sin, lengths, window_index, implementation: str) -> jnp.ndarray:
        """x (B, T, D) -> (B, T, D); cos/sin (1, T, R) of this layer's RoPE; window_index () int32."""
        h = self.self_attn(self.attn_norm(x) if self.pre else x, cos, sin, lengths, window_index,
                           implementation=implementation)
        x = x + (self.post_attn_norm(h) if self.post else h)
        h = self.mlp(self.mlp_norm(x) if self.pre else x)
        return x + (self.post_mlp_norm(h) if self.post else h)
