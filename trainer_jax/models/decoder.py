"""Flax NNX decoder covering Llama, Mistral, Qwen2, Gemma-2 and Phi-3.

The families differ only in switches held by ``DecoderConfig`` (biases, norm offset and sandwich norms,
soft-capping, sliding windows, embedding scale, partial RoPE); the Hugging Face tensor names of each
family live in ``trainer_jax.models.keymap``. Rows are packed (real tokens first, ``DecoderModel.packed``),
so positions are ``cumsum(mask) - 1`` and left padding, right padding and holes give the same hidden
states on real tokens; attention is causal with per-row lengths (``trainer_jax.models.attention``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from trainer_jax.models.attention import attend, choose_attention
from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.rope import apply_rope, rope_tables
from trainer_jax.models.sharding import param_spec

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

    def __call__(self, x, cos, sin, lengths, *, window: int | None, implementation: str) -> jnp.ndarray:
        """x (B, T, D) packed rows; cos/sin (B, T, R); lengths (B,) int32 real tokens per row."""
        cfg = self.cfg
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, cfg.num_heads, cfg.head_dim)  # (B, T, N, H)
        k = self.k_proj(x).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        v = self.v_proj(x).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)  # (B, T, K, H)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = attend(q, k, v, lengths, cfg=cfg, window=window, implementation=implementation)  # (B, T, N, H)
        return self.o_proj(out.reshape(b, t, cfg.num_heads * cfg.head_dim))


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

    def __call__(self, x, cos, sin, lengths, implementation: str) -> jnp.ndarray:
        h = self.self_attn(self.attn_norm(x), cos, sin, lengths, window=self.window, implementation=implementation)
        x = x + (self.post_attn_norm(h) if self.sandwich else h)
        h = self.mlp(self.mlp_norm(x))
        return x + (self.post_mlp_norm(h) if self.sandwich else h)


def layer_period(windows: tuple[int | None, ...]) -> int:
    """Smallest p dividing the layer count with windows[i] == windows[i % p] (Gemma-2: 2; most: 1)."""
    n = len(windows)
    return next(p for p in range(1, n + 1) if n % p == 0 and all(windows[i] == windows[i % p] for i in range(n)))


REMAT_POLICIES = ("full", "dots", "none")


@dataclasses.dataclass(frozen=True)
class Execution:
    """How a forward pass runs (not what it computes): remat, attention kernel, activation sharding."""

    remat: str = "none"  # "full": recompute each layer in the backward pass; "dots": keep weight matmuls; "none"
    attention: str | None = None  # "cudnn" or "xla"; None: choose_attention's pick for the model and dtype
    mesh: jax.sharding.Mesh | None = None  # set: activations are constrained to rows over batch_axes
    batch_axes: tuple[str, ...] = ("data", "fsdp")  # mesh axes the rows (batch) are split over
    fsdp_axis: str = "fsdp"  # mesh axis the parameters are split over (models.sharding.param_spec)


def _remat(body, policy: str):
    if policy == "none":
        return body
    if policy == "dots":  # keep the projections' outputs, recompute attention and elementwise work
        return jax.checkpoint(body, prevent_cse=False, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
    if policy == "full":
        return jax.checkpoint(body, prevent_cse=False)
    raise ValueError(f"unknown remat policy {policy!r}; choose one of {', '.join(REMAT_POLICIES)}")


def _compute_cast(matrix: jnp.ndarray, dtype, run: Execution) -> jnp.ndarray:
    """A float matrix cast to the compute dtype where it lies: with a mesh, the cast copy keeps the
    parameter's FSDP sharding, so the all-gather before its use moves compute-dtype bytes."""
    if matrix.ndim < 2 or not jnp.issubdtype(matrix.dtype, jnp.floating):
        return matrix
    cast = matrix.astype(dtype)
    if run.mesh is None:
        return cast
    spec = param_spec(matrix.shape, run.mesh.shape[run.fsdp_axis]) if run.fsdp_axis in run.mesh.shape else P()
    return jax.lax.with_sharding_constraint(cast, NamedSharding(run.mesh, spec))


class DecoderModel(nnx.Module):
    """Token embedding, decoder blocks and final norm (HF ``*Model``).

    Layers are stored stacked: ``layers`` is a list of the ``p = layer_period`` blocks of one period, each
    parameter with a leading axis of ``num_layers / p`` (layer i is block ``i % p`` at index ``i // p``),
    and the forward pass is one ``jax.lax.scan`` over that axis, so compile time and program size do not
    grow with depth.
    """

    def __init__(self, cfg: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.cfg = cfg
        self.dtype = dtype
        self.embed_tokens = nnx.Embed(
            cfg.vocab_size,
            cfg.hidden_size,
            dtype=dtype,
            param_dtype=param_dtype,
            embedding_init=nnx.initializers.normal(cfg.initializer_range),
            rngs=rngs,
        )
        period = layer_period(cfg.layer_windows)

        @nnx.split_rngs(splits=cfg.num_layers // period)
        @nnx.vmap(in_axes=0, out_axes=0)
        def stack(rngs: nnx.Rngs) -> nnx.List:
            return nnx.List([Block(cfg, j, dtype=dtype, param_dtype=param_dtype, rngs=rngs) for j in range(period)])

        self.layers = stack(rngs)
        self.norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, offset=cfg.norm_offset, param_dtype=param_dtype)

    def packed(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, run: Execution = Execution()):
        """Final hidden states of the rows packed left: (hidden (B, T, D), lengths (B,), order (B, T)).

        Row b's real tokens (mask 1), in order, come first: ``hidden[b, j]`` belongs to input position
        ``order[b, j]`` and ``hidden[b, lengths[b] - 1]`` to its last real token. Packing makes any padding
        (left, right, holes) right padding, which causal attention with per-row lengths serves; positions
        are then 0..length-1, as ``cumsum(mask) - 1`` gives. A row without real tokens counts one.
        """
        cfg = self.cfg
        b, t = input_ids.shape
        real = attention_mask.astype(bool)  # (B, T)
        lengths = jnp.maximum(jnp.sum(real, axis=-1), 1).astype(jnp.int32)  # (B,)
        order = jnp.argsort(~real, axis=-1, stable=True)  # (B, T) real tokens first, in input order
        ids = jnp.take_along_axis(input_ids, order, axis=-1)  # (B, T)
        implementation = run.attention or choose_attention(cfg, self.dtype).implementation

        def constrain(x, spec):
            return x if run.mesh is None else jax.lax.with_sharding_constraint(x, NamedSharding(run.mesh, spec))

        rows = P(run.batch_axes, None, None)
        table = constrain(_compute_cast(self.embed_tokens.embedding[...], self.dtype, run), P())  # (V, D) gathered
        x = constrain(jnp.take(table, constrain(ids, P(run.batch_axes, None)), axis=0), rows)  # (B, T, D)
        if cfg.embed_scale != 1.0:
            x = x * jnp.asarray(cfg.embed_scale, dtype=x.dtype)
        cos, sin = rope_tables(cfg, jnp.broadcast_to(jnp.arange(t), (b, t)), x.dtype)  # (B, T, R) each
        graphdef, stacked = nnx.split(self.layers)

        def body(h, layer_state):
            layer_state = jax.tree.map(lambda a: _compute_cast(a, self.dtype, run), layer_state)
            for block in nnx.merge(graphdef, layer_state):
                h = block(h, cos, sin, lengths, implementation)
            return constrain(h, rows), None  # (B, T, D) rows stay split over the batch axes

        x, _ = jax.lax.scan(_remat(body, run.remat), x, stacked)
        return self.norm(x), lengths, order

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, run: Execution = Execution()):
        """input_ids (B, T) int32, attention_mask (B, T) -> hidden states (B, T, D) at the input positions.

        Padding positions hold unspecified values.
        """
        hidden, _, order = self.packed(input_ids, attention_mask, run)
        inverse = jnp.argsort(order, axis=-1)  # (B, T) packed slot of each input position
        return jnp.take_along_axis(hidden, inverse[..., None], axis=1)


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

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, run: Execution = Execution()):
        """Final hidden states (B, T, D); call ``logits`` on them for next-token scores."""
        return self.model(input_ids, attention_mask, run)

    def logits(self, hidden: jnp.ndarray) -> jnp.ndarray:
        """(B, T, D) hidden -> (B, T, V) float32 logits, soft-capped for Gemma-2."""
        if self.lm_head is None:
            logits = self.model.embed_tokens.attend(hidden)
        else:
            logits = self.lm_head(hidden)
        logits = logits.astype(jnp.float32)
        cap = self.cfg.final_logit_softcap
        return logits if cap is None else jnp.tanh(logits / cap) * cap
