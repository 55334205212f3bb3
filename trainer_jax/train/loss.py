"""Reward-model losses and their metrics, all in float32, with padding rows masked out.

* Bradley-Terry: ``-mean(log_sigmoid(r_chosen - r_rejected - margin))`` plus an optional centering term
  ``coef * mean((r_chosen + r_rejected)^2)`` that keeps rewards near zero. Accuracy uses a strict ``>``
  (a tie is wrong), as RewardBench does.
* Regression: mean squared error over HelpSteer2's five attributes.

Means run over the valid rows only (``valid`` is False on the filler rows that complete a short last
batch); a batch without a valid row gives a zero loss, not NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _masked_mean(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
    """Mean of x (B,) over rows where valid (B,) is True; 0 when none is."""
    w = valid.astype(jnp.float32)  # (B,)
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def bradley_terry(
    r_chosen: jnp.ndarray,
    r_rejected: jnp.ndarray,
    valid: jnp.ndarray,
    *,
    margin: jnp.ndarray | float = 0.0,
    center_coef: float = 0.0,
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """r_chosen, r_rejected (B,) or (B, 1) rewards, valid (B,) bool -> (scalar loss, metrics dict)."""
    rc = r_chosen.reshape(r_chosen.shape[0]).astype(jnp.float32)  # (B,)
    rr = r_rejected.reshape(r_rejected.shape[0]).astype(jnp.float32)  # (B,)
    diff = rc - rr  # (B,) reward margin of each pair
    loss = _masked_mean(-jax.nn.log_sigmoid(diff - margin), valid)
    if center_coef:
        loss = loss + center_coef * _masked_mean((rc + rr) ** 2, valid)
    w = valid.astype(jnp.float32)  # (B,)
    n = jnp.maximum(jnp.sum(w), 1.0)
    mean = (jnp.sum(rc * w) + jnp.sum(rr * w)) / (2 * n)  # mean reward over both sides
    var = (jnp.sum((rc - mean) ** 2 * w) + jnp.sum((rr - mean) ** 2 * w)) / (2 * n)
    metrics = {
        "loss": loss,
        "accuracy": _masked_mean((diff > 0).astype(jnp.float32), valid),  # strict: ties are wrong
        "margin": _masked_mean(diff, valid),
        "reward_mean": mean,
        "reward_std": jnp.sqrt(var),
        "n": jnp.sum(w),
    }
    return loss, metrics


def regression(
    predictions: jnp.ndarray, targets: jnp.ndarray, valid: jnp.ndarray
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """predictions, targets (B, A) attribute scores, valid (B,) -> (MSE over attributes, metrics dict)."""
    err = predictions.astype(jnp.float32) - targets.astype(jnp.float32)  # (B, A)
    per_row = jnp.mean(err**2, axis=-1)  # (B,)
    loss = _masked_mean(per_row, valid)
    metrics = {
        "loss": loss,
        "mae": _masked_mean(jnp.mean(jnp.abs(err), axis=-1), valid),
        "reward_mean": _masked_mean(jnp.mean(predictions.astype(jnp.float32), axis=-1), valid),
        "n": jnp.sum(valid.astype(jnp.float32)),
    }
    return loss, metrics
