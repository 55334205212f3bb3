"""What ``plan`` (and the budget simulation) believes about a pool, and how runs are chosen.

The belief is the pool's predictive distribution (predictor.models.predictive: the same one ``rank``
shows) conditioned on the labels measured so far. A measured base is known exactly and moves its
siblings through their shared lineage effect u_g: with the standardised errors w_j of the measured
siblings, u_g's conditional distribution is normal with precision 1 + n·rho/(1 - rho) and mean
sqrt(rho)/(1 - rho) · sum(w_j) / precision (Gaussian conditioning of the normal part; the weights do
not depend on the lineage's shared tail factor, which keeps its prior).

Choosing runs. The value of a set S of runs is E[max(best measured, max_{i in S} measured_i)]: its
complement is the expected regret against the pool's best, the figure ``evaluate --budget`` judges.
One run (or the first of a batch) maximises expected improvement over the best measured score,
E[max(y_i - best, 0)], by quadrature over the error's t distribution; with nothing measured yet there
is no incumbent and the highest mean goes first. Runs that go out in parallel cannot wait for each
other's results, so each further run of a batch maximises the gain of the batch's expected best
given the runs already in it (greedy batch expected improvement, "q-EI", by Monte Carlo from the
joint distribution): two siblings share u_g, so a batch spreads over lineages unless one is clearly best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from predictor.errors import DataError
from predictor.models import student as S
from predictor.models.predictive import Predictive

N_DRAWS = 4000  # Monte Carlo draws of the joint distribution (P(best), P(within 1 point), batch gains)
WITHIN = 1.0  # points: "close enough to the pool's best"
CHUNK = 256  # candidates per block of the quadrature, (CHUNK, nodes) at a time


@dataclass(frozen=True)
class Belief:
    """A pool's predictive distribution and the scores measured so far."""

    dist: Predictive  # prior: mean, scale, lineage, error (predictor.models.predictive)
    measured: np.ndarray  # (N,) measured score, points; NaN where not trained yet

    def __post_init__(self):
        if not np.isfinite(self.dist.mean).all():
            raise DataError("a candidate has no prediction (too few labelled bases left to fit the method on); "
                            "use a smaller pool or add labels")

    @property
    def open(self) -> np.ndarray:
        return np.isnan(self.measured)

    @property
    def best_measured(self) -> float:
        return float(np.nanmax(self.measured)) if (~self.open).any() else -math.inf

    def lineage_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of each lineage's effect u_g given the measured siblings, (G,) each."""
        n_groups = int(self.dist.group.max()) + 1
        done = ~self.open
        rho = self.dist.error.rho
        w = self.dist.standardised(np.where(done, self.measured, self.dist.mean))[done]
        total = np.bincount(self.dist.group[done], weights=w, minlength=n_groups)  # (G,)
        count = np.bincount(self.dist.group[done], minlength=n_groups)
        precision = 1.0 + count * rho / (1.0 - rho)
        return math.sqrt(rho) / (1.0 - rho) * total / precision, 1.0 / precision

    def _expect(self, fn) -> np.ndarray:
        """(N,) E[fn(score, i)] per open candidate by quadrature: its standardised error is
        sqrt(rho)·E[u_g] + s·T with s² = rho·Var[u_g] + 1 - rho and T ~ t(dof)."""
        shift, var = self.lineage_posterior()
        rho, d = self.dist.error.rho, self.dist
        t, weight = S.nodes(d.error.dof)
        out = np.zeros(len(d.mean))
        for start in range(0, len(d.mean), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(d.mean)))
            g = d.group[rows]
            w = math.sqrt(rho) * shift[g, None] + np.sqrt(rho * var[g] + 1 - rho)[:, None] * t  # (R, nodes)
            out[rows] = (fn(d.to_points(w, rows[:, None]), rows[:, None]) * weight).sum(axis=1)
        return out

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) per candidate, points; a measured candidate is its measurement with sd 0."""
        mean = self._expect(lambda y, i: y)
        second = self._expect(lambda y, i: y * y)
        sd = np.sqrt(np.maximum(second - mean * mean, 0.0))
        return np.where(self.open, mean, self.measured), np.where(self.open, sd, 0.0)

    def improvement(self, best: float) -> np.ndarray:
        """(N,) E[max(score - best, 0)], points; 0 for measured candidates."""
        gain = self._expect(lambda y, i: np.maximum(y - best, 0.0))
        return np.where(self.open, gain, 0.0)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, N) joint draws of every candidate's score; measured candidates fixed."""
        shift, var = self.lineage_posterior()
        y = self.dist.draws(n, rng, shift=shift, spread=var)
        return np.where(self.open, y, self.measured)

    def reveal(self, i: int, value: float) -> "Belief":
        measured = self.measured.copy()
        measured[i] = value
        return replace(self, measured=measured)


def next_run(belief: Belief) -> tuple[int, float]:
    """(candidate, expected improvement) of the single best next run; nothing measured: the highest
    mean, with improvement NaN (there is nothing to improve on)."""
    best = belief.best_measured
    if math.isinf(best):
        score, gain = belief.dist.mean, np.full(len(belief.measured), math.nan)
    else:
        score = gain = belief.improvement(best)
    i = int(np.argmax(np.where(belief.open, score, -np.inf)))  # ties: the earliest candidate
    return i, float(gain[i])


def choose_batch(belief: Belief, k: int, rng: np.random.Generator, draws: np.ndarray | None = None) -> list[tuple[int, float]]:
    """k runs to start together: [(candidate, expected gain of the batch's best from adding it)]."""
    first, gain = next_run(belief)
    batch = [(first, gain)]
    if k == 1:
        return batch
    y = belief.draws(N_DRAWS, rng) if draws is None else draws  # (D, N)
    current = np.maximum(y[:, first], belief.best_measured)  # (D,) best of measured + batch so far
    taken = ~belief.open
    taken[first] = True
    for _ in range(k - 1):
        gains = np.maximum(y, current[:, None]).mean(axis=0) - current.mean()  # (N,) points
        i = int(np.argmax(np.where(taken, -np.inf, gains)))
        batch.append((i, float(gains[i])))
        taken[i] = True
        current = np.maximum(current, y[:, i])
    return batch


def odds(belief: Belief, batch: list[int], draws: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(P(best of the pool) per candidate, P(best measured within 1 point of the pool's best),
    the same once ``batch`` is measured too), from joint draws (D, N)."""
    top = draws.max(axis=1)  # (D,) the pool's best
    p_best = np.bincount(draws.argmax(axis=1), minlength=draws.shape[1]) / len(draws)
    now = belief.best_measured
    after = np.maximum(now, draws[:, batch].max(axis=1)) if batch else np.full(len(draws), now)
    return p_best, float(np.mean(now >= top - WITHIN)), float(np.mean(after >= top - WITHIN))
