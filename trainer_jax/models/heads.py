"""Reward heads: backbone + ``score`` Dense(D, num_labels, no bias) at the last real token, in fp32.

``num_labels == 1`` is a Bradley-Terry reward; ``num_labels == n`` is multi-attribute regression.
The pooled token is found from the attention mask (``argmax(arange(T) * mask)``), never from pad ids,
so it is right for left padding, right padding and pad == eos alike.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.decoder import DecoderModel


def last_token_index(attention_mask: jnp.ndarray) -> jnp.ndarray:
    """(B, T) mask -> (B,) index of the last real token, whatever the padding side."""
    t = attention_mask.shape[-1]
    return jnp.argmax(jnp.arange(t) * attention_mask.astype(jnp.int32), axis=-1)  # (B,)


class RewardModel(nnx.Module):
    """HF ``*ForSequenceClassification`` equivalent: ``model`` backbone and ``score`` head."""

    def __init__(
        self,
        cfg: DecoderConfig,
        *,
        num_labels: int = 1,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.cfg = cfg
        self.num_labels = num_labels
        self.model = DecoderModel(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.score = nnx.Linear(
            cfg.hidden_size,
            num_labels,
            use_bias=False,
            dtype=jnp.float32,
            param_dtype=jnp.float32,  # the head always stays fp32, whatever param_dtype the body uses
            kernel_init=nnx.initializers.normal(cfg.initializer_range),
            rngs=rngs,
        )

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, *, remat: bool = False) -> jnp.ndarray:
        """input_ids (B, T), attention_mask (B, T) -> rewards (B, num_labels) float32.

        ``remat=True`` recomputes block activations in the backward pass (see ``DecoderModel``).
        """
        hidden = self.model(input_ids, attention_mask, remat=remat)  # (B, T, D)
        last = last_token_index(attention_mask)  # (B,)
        pooled = hidden[jnp.arange(hidden.shape[0]), last].astype(jnp.float32)  # (B, D)
        return self.score(pooled)  # (B, L)


def concat_pairs(
    chosen_ids: jnp.ndarray, chosen_mask: jnp.ndarray, rejected_ids: jnp.ndarray, rejected_mask: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Stack chosen over rejected on the batch axis -> ids, mask (2B, T); the shorter side is right-padded."""
    t = max(chosen_ids.shape[1], rejected_ids.shape[1])

    def pad(x: jnp.ndarray) -> jnp.ndarray:
        return jnp.pad(x, ((0, 0), (0, t - x.shape[1])))  # (B, T) zeros on the right

    ids = jnp.concatenate([pad(chosen_ids), pad(rejected_ids)], axis=0)  # (2B, T)
    mask = jnp.concatenate([pad(chosen_mask), pad(rejected_mask)], axis=0)  # (2B, T)
    return ids, mask


def pair_rewards(
    model: RewardModel,
    chosen_ids: jnp.ndarray,
    chosen_mask: jnp.ndarray,
    rejected_ids: jnp.ndarray,
    rejected_mask: jnp.ndarray,
    *,
    remat: bool = False,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Chosen and rejected rewards, each (B, num_labels) float32, from ONE forward pass over 2B rows."""
    ids, mask = concat_pairs(chosen_ids, chosen_mask, rejected_ids, rejected_mask)
    rewards = model(ids, mask, remat=remat)  # (2B, L)
    b = chosen_ids.shape[0]
    return rewards[:b], rewards[b:]
