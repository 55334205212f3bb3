"""Flax NNX decoder covering Llama, Mistral, Qwen2, Gemma-2 and Phi-3.

The families differ only in switches held by ``DecoderConfig`` (biases, norm offset and sandwich norms,
soft-capping, sliding windows, embedding scale, partial RoPE); the Hugging Face tensor names of each
family live in ``trainer_jax.models.keymap``. Positions come from the attention mask
(``cumsum(mask) - 1``), so left and right padding give the same hidden states on real tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.rope import apply_rope, rope_tables

_ACTIVATIONS = {
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
}


class RMSNorm(nnx.Module):
    """RMSNorm as transformers computes it: statistics in fp32; Gemma multiplies by (1 + w) in fp32.

    Not ``nnx.RMSNorm``: that one has no (1 + w) offset and casts at a different point, which breaks
    bit-level parity with the checkpoints' reference implementation.
    """

    def __init__(self, dim: int, *, eps: float, offset: bool, param_dtype):
        self.eps = eps
        self.offset = offset
        init = jnp.zeros if offset else jnp.ones
        self.weight = nnx.Param(init((dim,), dtype=param_dtype))

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)  # (..., D)
        w = self.weight[...]
        if self.offset:
            return (normed * (1.0 + w.astype(jnp.float32))).astype(x.dtype)
        return w.astype(x.dtype) * normed.astype(x.dtype)


def _linear(cfg: DecoderConfig, n_in: int, n_out: int, bias: bool, dtype, param_dtype, rngs) -> nnx.Linear:
    init = nnx.initializers.normal(cfg.initializer_range)
    return nnx.Linear(
        n_in, n_out, use_bias=bias, dtype=dtype, param_dtype=param_dtype, kernel_init=init, rngs=rngs
    )


class Attention(nnx.Module):
    """Grouped-query self-attention with RoPE, optional sliding window and logit soft-capping."""

    def __init__(self, cfg: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.cfg = cfg
        d, n, k, h = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = _linear(cfg, d, n * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.k_proj = _linear(cfg, d, k * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.v_proj = _linear(cfg, d, k * h, cfg.qkv_bias, dtype, param_dtype, rngs)
        self.o_proj = _linear(cfg, n * h, d, cfg.o_bias, dtype, param_dtype, rngs)

    def __call__(self, x, cos, sin, mask) -> jnp.ndarray:
        """x (B, T, D); cos/sin (B, T, R); mask (B, 1, T, T) bool, True = may attend."""
        cfg = self.cfg
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, cfg.num_heads, cfg.head_dim)  # (B, T, N, H)
        k = self.k_proj(x).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        v = self.v_proj(x).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cfg.attn_logit_softcap is None:
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=cfg.query_scale)  # (B, T, N, H)
        else:
            out = self._softcapped(q, k, v, mask)
        return self.o_proj(out.reshape(b, t, cfg.num_heads * cfg.head_dim))

    def _softcapped(self, q, k, v, mask) -> jnp.ndarray:
        """Explicit attention for Gemma-2's cap * tanh(logits / cap), which dot_product_attention lacks."""
        cfg = self.cfg
        b, t, n, h = q.shape
        g = n // cfg.num_kv_heads
        q = q.reshape(b, t, cfg.num_kv_heads, g, h)  # (B, T, K, G, H) query groups per kv head
        logits = jnp.einsum("btkgh,bskh->bkgts", q, k).astype(jnp.float32) * cfg.query_scale  # (B, K, G, T, S)
        cap = cfg.attn_logit_softcap
        logits = jnp.tanh(logits / cap) * cap
        logits = jnp.where(mask[:, :, None], logits, jnp.finfo(jnp.float32).min)  # mask (B, 1, 1, T, S)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        out = jnp.einsum("bkgts,bskh->btkgh", probs, v)  # (B, T, K, G, H)
        return out.reshape(b, t, n, h)


class MLP(nnx.Module):
    """Gated MLP: down(act(gate(x)) * up(x))."""

    def __init__(self, cfg: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.act = cfg.hidden_act
        d, f = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = _linear(cfg, d, f, cfg.mlp_bias, dtype, param_dtype, rngs)
        self.up_proj = _linear(cfg, d, f, cfg.mlp_bias, dtype, param_dtype, rngs)
        self.down_proj = _linear(cfg, f, d, cfg.mlp_bias, dtype, param_dtype, rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.down_proj(_ACTIVATIONS[self.act](self.gate_proj(x)) * self.up_proj(x))


class Block(nnx.Module):
    """Pre-norm residual block; Gemma-2 adds norms after attention and after the MLP (sandwich)."""

    def __init__(self, cfg: DecoderConfig, layer: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.sandwich = cfg.sandwich_norms
        self.window = cfg.layer_windows[layer]
        norm = dict(eps=cfg.rms_norm_eps, offset=cfg.norm_offset, param_dtype=param_dtype)
        self.attn_norm = RMSNorm(cfg.hidden_size, **norm)
        self.self_attn = Attention(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.mlp_norm = RMSNorm(cfg.hidden_size, **norm)
        self.mlp = MLP(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        if self.sandwich:
            self.post_attn_norm = RMSNorm(cfg.hidden_size, **norm)
            self.post_mlp_norm = RMSNorm(cfg.hidden_size, **norm)

    def __call__(self, x, cos, sin, masks: dict) -> jnp.ndarray:
        h = self.self_attn(self.attn_norm(x), cos, sin, masks[self.window])
        x = x + (self.post_attn_norm(h) if self.sandwich else h)
        h = self.mlp(self.mlp_norm(x))
        return x + (self.post_mlp_norm(h) if self.sandwich else h)


def attention_masks(attention_mask: jnp.ndarray, windows) -> dict:
    """One (B, 1, T, T) bool mask per distinct window (None = full causal).

    Keys must be real tokens; each query may always see itself, so a pad query never has an empty row
    (its output is ignored; real queries never see pad keys).
    """
    valid = attention_mask.astype(bool)  # (B, T)
    t = valid.shape[1]
    positions = jnp.cumsum(valid, axis=-1) - 1  # (B, T) position of each real token
    idx = jnp.arange(t)
    causal = idx[:, None] >= idx[None, :]  # (T, S)
    base = causal[None] & valid[:, None, :]  # (B, T, S)
    masks = {}
    for window in set(windows):
        m = base
        if window is not None:
            m = m & (positions[:, :, None] - positions[:, None, :] < window)  # (B, T, S) within window
        masks[window] = (m | jnp.eye(t, dtype=bool)[None])[:, None]  # (B, 1, T, S)
    return masks


class DecoderModel(nnx.Module):
    """Token embedding, decoder blocks and final norm (HF ``*Model``); returns final hidden states."""

    def __init__(self, cfg: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.cfg = cfg
        self.embed_tokens = nnx.Embed(
            cfg.vocab_size,
            cfg.hidden_size,
            dtype=dtype,
            param_dtype=param_dtype,
            embedding_init=nnx.initializers.normal(cfg.initializer_range),
            rngs=rngs,
        )
        self.layers = nnx.List(
            [Block(cfg, i, dtype=dtype, param_dtype=param_dtype, rngs=rngs) for i in range(cfg.num_layers)]
        )
        self.norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, offset=cfg.norm_offset, param_dtype=param_dtype)

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, *, remat: bool = False) -> jnp.ndarray:
        """input_ids (B, T) int32, attention_mask (B, T) int/bool -> hidden states (B, T, D) in dtype.

        ``remat=True`` recomputes each block's activations in the backward pass (``nnx.remat``): same
        values, less memory for training.
        """
        x = self.embed_tokens(input_ids)  # (B, T, D)
        if self.cfg.embed_scale != 1.0:
            x = x * jnp.asarray(self.cfg.embed_scale, dtype=x.dtype)
        positions = jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=-1) - 1, 0)  # (B, T)
        cos, sin = rope_tables(self.cfg, positions, x.dtype)  # (B, T, R) each
        masks = attention_masks(attention_mask, self.cfg.layer_windows)

        def run(block: Block, h: jnp.ndarray) -> jnp.ndarray:
            return block(h, cos, sin, masks)  # (B, T, D)

        step = nnx.remat(run) if remat else run
        for block in self.layers:
            x = step(block, x)
        return self.norm(x)


class CausalLM(nnx.Module):
    """Backbone plus LM head (HF ``*ForCausalLM``); the head is the embedding when tied."""

    def __init__(self, cfg: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.cfg = cfg
        self.model = DecoderModel(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.lm_head = (
            None
            if cfg.tie_word_embeddings
            else _linear(cfg, cfg.hidden_size, cfg.vocab_size, False, dtype, param_dtype, rngs)
        )

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, *, remat: bool = False) -> jnp.ndarray:
        """Final hidden states (B, T, D); call ``logits`` on them for next-token scores."""
        return self.model(input_ids, attention_mask, remat=remat)

    def logits(self, hidden: jnp.ndarray) -> jnp.ndarray:
        """(B, T, D) hidden -> (B, T, V) float32 logits, soft-capped for Gemma-2."""
        if self.lm_head is None:
            logits = self.model.embed_tokens.attend(hidden)
        else:
            logits = self.lm_head(hidden)
        logits = logits.astype(jnp.float32)
        cap = self.cfg.final_logit_softcap
        return logits if cap is None else jnp.tanh(logits / cap) * cap
