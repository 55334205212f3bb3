"""Flax NNX decoder of every supported family (``trainer_jax.models.families``).

The families differ only in switches held by ``DecoderConfig`` (norm kind and placement, q/k norms,
biases, gated MLP, soft-capping, sliding windows, per-layer RoPE, embedding scale, partial RoPE), read by
the one block in ``trainer_jax.models.block``; the Hugging Face tensor names of each family live in
``trainer_jax.models.keymap``. Rows are packed (real tokens first, ``DecoderModel.packed``),
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

from trainer_jax.models.attention import choose_attention
from trainer_jax.models.block import Block, Norm, linear, layer_kinds
from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.rope import rope_tables
from trainer_jax.models.sharding import param_spec

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

    Layers are stored stacked: ``layers`` is one ``Block`` whose parameters have a leading axis of
    ``num_layers``, and the forward pass is one ``jax.lax.scan`` over that axis, so compile time and program
    size do not grow with depth. What differs between layers (Gemma 2/3's and OLMo 3's sliding windows,
    Gemma 3's two RoPE bases, SmolLM3's layers without RoPE) is scanned along as two small per-layer
    indices (``block.layer_kinds``): one picks the layer's RoPE table, one its attention branch.
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

        @nnx.split_rngs(splits=cfg.num_layers)
        @nnx.vmap(in_axes=0, out_axes=0)
        def stack(rngs: nnx.Rngs) -> Block:
            return Block(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

        self.layers = stack(rngs)
        self.norm = Norm(cfg.hidden_size, kind=cfg.norm, eps=cfg.norm_eps, param_dtype=param_dtype)

    def packed(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, run: Execution = Execution()):
        """Final hidden states of the rows packed left: (hidden (B, T, D), lengths (B,), order (B, T)).

        Row b's real tokens (mask 1), in order, come first: ``hidden[b, j]`` belongs to input position
        ``order[b, j]`` and ``hidden[b, lengths[b] - 1]`` to its last real token. Packing makes any padding
        (left, right, holes) right padding, which causal attention with per-row lengths serves; positions
        are then 0..length-1, as ``cumsum(mask) - 1`` gives. A row without real tokens counts one.
        """
        cfg = self.cfg
        t = input_ids.shape[1]
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
        _, ropes, window_index, rope_index = layer_kinds(cfg)
        cos, sin = rope_tables(cfg, ropes, t, x.dtype)  # (P, 1, T, R) each, one table per distinct RoPE
        graphdef, stacked = nnx.split(self.layers)

        def body(h, layer):
            layer_state, window, rope = layer  # the layer's parameters, window index, RoPE index
            layer_state = jax.tree.map(lambda a: _compute_cast(a, self.dtype, run), layer_state)
            h = nnx.merge(graphdef, layer_state)(h, cos[rope], sin[rope], lengths, window, implementation)
            return constrain(h, rows), None  # (B, T, D) rows stay split over the batch axes

        layers = (stacked, jnp.asarray(window_index), jnp.asarray(rope_index))
        x, _ = jax.lax.scan(_remat(body, run.remat), x, layers)
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
            else linear(cfg, cfg.hidden_size, cfg.vocab_size, False, dtype, param_dtype, rngs)
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
