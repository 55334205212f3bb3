"""Reward heads: backbone + ``score`` Dense(D, num_labels, no bias) at the last real token, in fp32.

``num_labels == 1`` is a Bradley-Terry reward; ``num_labels == n`` is multi-attribute regression.
The pooled token is the last one the attention mask marks real (``DecoderModel.packed`` puts it at
``length - 1``), never found from pad ids, so it is right for left padding, right padding and pad == eos
alike.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from trainer_jax.models.config import DecoderConfig
from trainer_jax.models.decoder import DecoderModel, Execution


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

    def __call__(self, input_ids: jnp.ndarray, attention_mask: jnp.ndarray, run: Execution = Execution()):
        """input_ids (B, T), attention_mask (B, T) -> rewards (B, num_labels) float32."""
        hidden, lengths, _ = self.model.packed(input_ids, attention_mask, run)  # (B, T, D), (B,)
        pooled = hidden[jnp.arange(hidden.shape[0]), lengths - 1].astype(jnp.float32)  # (B, D) last real token
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
    run: Execution = Execution(),
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Chosen and rejected rewards, each (B, num_labels) float32, from ONE forward pass over 2B rows."""
    ids, mask = concat_pairs(chosen_ids, chosen_mask, rejected_ids, rejected_mask)
    rewards = model(ids, mask, run)  # (2B, L)
    b = chosen_ids.shape[0]
    return rewards[:b], rewards[b:]
