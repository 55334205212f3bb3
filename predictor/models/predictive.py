"""What ``rank`` and ``plan`` say about a pool of candidates, from a ranking method's predictions and
the calibration ``fit`` stored with it (predictor.models.calibrate).

- ``rank_numbers``: the interval (prediction ± the ``level`` quantile of the method's leave-lineage-out
  absolute residuals, widened for missing inputs) and P(top k) (draws of an ensemble member's
  prediction plus a resampled residual per candidate).
- ``plan_belief``: plan's lineage-correlated normal distribution (predictor.models.bayes).
"""

from __future__ import annotations

import numpy as np

from predictor.models import bayes as Y
from predictor.models.metrics import interval_halfwidth

N_DRAWS = 2000  # Monte Carlo draws for P(top k)


def rank_numbers(members: np.ndarray, residuals: np.ndarray, wider: np.ndarray, level: float, top_k: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, interval half-width, P(top k)), (N,) each, points and probabilities."""
    half = interval_halfwidth(residuals, level) * wider  # (N,) points
    p_top = top_k_odds(members, residuals, top_k, np.random.default_rng(seed), scale=wider)
    return members.mean(axis=0), half, p_top


def top_k_odds(members: np.ndarray, residuals: np.ndarray, k: int, rng: np.random.Generator,
               scale: np.ndarray | None = None) -> np.ndarray:
    """(N,) probability of being among the k best: draws of (ensemble member + lineage-out residual).

    ``scale`` (N,) widens a candidate's residuals (missing inputs). Candidates whose best possible draw
    is below the k-th best worst-case draw can never make the top k; they get exactly 0 and are left
    out of the simulation (most of a 4,497-model pool).
    """
    n_bags, n = members.shape
    k = min(k, n)
    scale = np.ones(n) if scale is None else scale
    best_case = members.max(axis=0) + residuals.max() * scale  # (N,)
    worst_case = members.min(axis=0) + residuals.min() * scale
    bar = np.partition(worst_case, n - k)[n - k]  # k-th largest worst case
    alive = np.flatnonzero(best_case >= bar)
    pick = rng.integers(0, n_bags, size=N_DRAWS)  # (D,) which member
    noise = rng.choice(residuals, size=(N_DRAWS, alive.size), replace=True) * scale[alive]  # (D, A) points
    draws = members[pick][:, alive] + noise  # (D, A)
    kth = -np.partition(-draws, k - 1, axis=1)[:, k - 1 : k]  # (D, 1) the k-th best value per draw
    odds = np.zeros(n)
    odds[alive] = (draws >= kth).mean(axis=0)
    return odds


def plan_belief(predicted: np.ndarray, cal: dict, wider: np.ndarray, group: np.ndarray,
                measured: np.ndarray) -> Y.Belief:
    """plan's predictive distribution: predictions with the stored residual scale (widened for missing
    inputs) and lineage correlation, conditioned on ``measured`` (NaN where not trained)."""
    sd = cal["residual_sd"] * wider  # (N,) points
    return Y.Belief(np.clip(predicted, 0.0, 100.0), sd, group, cal["lineage_correlation"], measured)
