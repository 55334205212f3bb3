"""The predictive distribution behind ``plan`` and the budget simulation, and how runs are chosen.

Model, for candidate i of lineage g (RewardBench points)::

    measured_i = predicted_i + sd_i · (sqrt(rho) · u_g + sqrt(1 - rho) · e_i),   u_g, e_i ~ N(0, 1)

``predicted`` is the ranking method's prediction, ``sd`` its calibrated residual scale (widened for
missing inputs) and ``rho`` the within-lineage residual correlation, all from leave-lineage-out
residuals (predictor.models.uncertainty). A measured label fixes its candidate and, through the shared
``u_g``, moves its siblings: with standardised residuals s_j of the measured siblings, u_g's posterior
is normal with precision 1 + n·rho/(1 - rho) and mean sqrt(rho)/(1 - rho) · sum(s_j) / precision.

Choosing runs. The value of a set S of runs is E[max(best measured, max_{i in S} measured_i)]: its
complement is the expected regret against the pool's best, the figure ``evaluate --budget`` judges.
One run (or the first of a batch) maximises expected improvement over the best measured score,
E[max(y_i - best, 0)], in closed form; with nothing measured yet there is no incumbent and the
highest posterior mean goes first. Runs that go out in parallel cannot wait for each other's
results, so each further run of a batch maximises the gain of the batch's expected best given the
runs already in it (greedy batch expected improvement, "q-EI", by Monte Carlo from the joint
distribution): two siblings share u_g, so a batch spreads over lineages unless one is clearly best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_DRAWS = 4000  # Monte Carlo draws of the joint distribution (P(best), P(within 1 point), batch gains)
WITHIN = 1.0  # points: "close enough to the pool's best"


def normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.array([math.erf(v / math.sqrt(2.0)) for v in np.ravel(z)]).reshape(np.shape(z)))


def normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """E[max(Y - best, 0)] for Y ~ N(mean, sd²), elementwise; sd = 0 gives max(mean - best, 0)."""
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    safe = np.where(sd > 0, sd, 1.0)
    z = (mean - best) / safe
    ei = (mean - best) * normal_cdf(z) + safe * normal_pdf(z)
    return np.where(sd > 0, ei, np.maximum(mean - best, 0.0))


@dataclass
class Belief:
    """What is believed about a pool's scores: prior predictions, their uncertainty and what was measured."""

    predicted: np.ndarray  # (N,) the ranking method's predictions, points
    sd: np.ndarray  # (N,) residual scale, points
    group: np.ndarray  # (N,) int lineage index
    rho: float  # within-lineage residual correlation, [0, 1)
    measured: np.ndarray  # (N,) measured score, points; NaN where not trained yet

    @property
    def open(self) -> np.ndarray:
        return np.isnan(self.measured)

    @property
    def best_measured(self) -> float:
        return float(np.nanmax(self.measured)) if (~self.open).any() else -math.inf

    def lineage_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of each lineage's shared effect u_g given the measured siblings, (G,) each."""
        n_groups = int(self.group.max()) + 1
        done = ~self.open
        s = (self.measured[done] - self.predicted[done]) / self.sd[done]  # standardised residuals
        total = np.bincount(self.group[done], weights=s, minlength=n_groups)  # (G,)
        count = np.bincount(self.group[done], minlength=n_groups)
        precision = 1.0 + count * self.rho / (1.0 - self.rho)
        return math.sqrt(self.rho) / (1.0 - self.rho) * total / precision, 1.0 / precision

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) per candidate, points; a measured candidate is its measurement with sd 0."""
        m_u, v_u = self.lineage_posterior()
        mean = self.predicted + self.sd * math.sqrt(self.rho) * m_u[self.group]
        sd = self.sd * np.sqrt(self.rho * v_u[self.group] + 1.0 - self.rho)
        return np.where(self.open, mean, self.measured), np.where(self.open, sd, 0.0)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, N) joint draws of every candidate's score; measured candidates fixed."""
        m_u, v_u = self.lineage_posterior()
        u = m_u + np.sqrt(v_u) * rng.standard_normal((n, len(m_u)))  # (n, G)
        e = rng.standard_normal((n, len(self.predicted)))  # (n, N)
        y = self.predicted + self.sd * (math.sqrt(self.rho) * u[:, self.group] + math.sqrt(1.0 - self.rho) * e)
        return np.where(self.open, y, self.measured)

    def reveal(self, i: int, value: float) -> "Belief":
        measured = self.measured.copy()
        measured[i] = value
        return Belief(self.predicted, self.sd, self.group, self.rho, measured)


def next_run(belief: Belief) -> tuple[int, float]:
    """(candidate, expected improvement) of the single best next run; nothing measured: the highest
    posterior mean, with improvement NaN (there is nothing to improve on)."""
    mean, sd = belief.posterior()
    best = belief.best_measured
    if math.isinf(best):
        score, gain = mean, np.full(len(mean), math.nan)
    else:
        score = gain = expected_improvement(mean, sd, best)
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
