"""The one predictive distribution behind ``rank`` (prediction, interval, P(top k)) and ``plan``
(beliefs, predictor.models.bayes), fitted from what ``fit`` stores: each labelled base's *level* —
the ranking method's prediction as ``rank`` would make it (a rule: its line fitted on all labels; a
learned method: its leave-one-lineage-out prediction) — its measured score and its lineage.

For a candidate whose method predicts ``raw`` (points), of lineage g::

    measured = m(raw) + h · x,   x = loc + (low if w < 0 else high) · w,
    w = sqrt(rho) · u_g + sqrt(1 - rho) · e,   (u_g, e) = (normal, normal) · sqrt(dof / chi²(dof)) per lineage

- m (the mean): a least-squares line in the level with a hinge at the labelled levels' upper
  quartile, so the top may bend (selection correction: the best-looking bases were over-predicted
  out of fold). Each slope is shrunk towards zero by the positive-part James–Stein factor
  max(0, 1 - se²/slope²) with a delete-one-lineage jackknife standard error, and both by the same
  factor of the plain line's slope ("skill"): a ranking whose slope is not above its noise gives
  nearly equal means, so P(top k) stays near k/n. Slopes stay positive, so m keeps the method's
  order, and at most 1 below the knot (shrinkage only).
- x (the error): a two-piece Student t — separate scales below and above its median, the degrees
  of freedom by maximum likelihood on a grid — of the lineage-out residuals of m (m refitted without
  each lineage); ``loc`` puts its mean at 0, so m is the predictive mean. The scales are then
  stretched together until the central ``LEVEL`` interval covers that share of those residuals
  (with split conformal's finite-sample correction, LEVEL·(n+1)/n).
- h: 1, widened for missing inputs (predictor.models.uncertainty.widening) and for extrapolation:
  where m's own jackknife variance exceeds its average over the labelled levels (already in the
  residuals), the excess is added.
- rho: the within-lineage correlation of the standardised residuals (predictor.models.uncertainty);
  a shared chi² per lineage makes siblings' tails move together, and each marginal a two-piece t.

P(top k) is simulated jointly, every candidate in every draw: ``N_DRAWS`` draws, fewer in a large
pool so that the work stays bounded (``CELLS``). Each draw contributes, per candidate, the exact
probability that its own error puts it above the k-th best of the others, given its lineage's draw
(Rao–Blackwell): smooth, summing to k, small but never exactly 0 for a far-behind candidate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from predictor.models import student as S
from predictor.models.uncertainty import lineage_correlation

KNOT = 0.75  # quantile of the labelled levels where the mean may bend
DOFS = (2.5, 3.0, 4.0, 6.0, 10.0, 30.0, 1000.0)  # candidate tail weights (1000: practically normal)
LEVEL = 0.8  # the interval level the error scales are calibrated to (rank's default)
MIN_SLOPE = 1e-3  # calibrated points per predicted point: the mean never reverses the method's order
MAX_SLOPE = 1.0  # below the knot the mean is never steeper than the method's own prediction (shrinkage only)
N_DRAWS = 2000  # joint draws for rank's P(top k)
CELLS = 1_000_000  # at most this many candidate-draws: a pool of 4,497 gets 222 draws
MIN_DRAWS = 200  # and never fewer draws than this


@dataclass(frozen=True)
class Error:
    """The error x of a full-input candidate inside the labelled range (module doc)."""

    loc: float  # points: the median, set so that the mean is 0
    low: float  # points: scale of the t below the median
    high: float  # points: scale of the t above the median
    dof: float  # degrees of freedom of the t (both halves)
    rho: float  # within-lineage correlation, [0, 0.9]

    def sd(self) -> float:
        t, weight = S.nodes(self.dof)
        x = self.loc + np.where(t < 0, self.low, self.high) * t
        return float(np.sqrt(np.sum(weight * x * x)))


@dataclass(frozen=True)
class Calibration:
    """The fitted distribution (module doc); ``to_json``/``from_json`` store it in an artifact."""

    knot: float  # points: level where the mean may bend
    intercept: float  # points: calibrated mean at the knot
    slope: float  # calibrated points per predicted point below the knot, in [MIN_SLOPE, MAX_SLOPE]
    bend: float  # change of slope above the knot (negative: the top is shrunk)
    cov: tuple[tuple[float, ...], ...]  # (3, 3) jackknife covariance of (intercept, slope, bend), each slope's part shrunk as it
    base_var: float  # points²: mean of the mean's jackknife variance over the labelled levels
    error: Error
    skill: float  # least-squares slope of the measured scores on the level (plain line)
    skill_se: float  # its delete-one-lineage jackknife standard error

    @property
    def skill_z(self) -> float:
        """The plain line's slope over its jackknife standard error (0 when undefined)."""
        return self.skill / self.skill_se if self.skill_se > 0 and math.isfinite(self.skill_se) else 0.0

    @property
    def no_skill(self) -> bool:
        """The plain line's slope is within two standard errors of zero: ranking beyond the noise is unproven."""
        return not self.skill_z > 2.0

    def basis(self, raw: np.ndarray) -> np.ndarray:
        d = np.asarray(raw, float) - self.knot
        return np.stack([np.ones_like(d), d, np.maximum(d, 0.0)], axis=-1)  # (N, 3)

    def mean(self, raw: np.ndarray) -> np.ndarray:
        return self.basis(raw) @ np.array([self.intercept, self.slope, self.bend])

    def stretch(self, raw: np.ndarray) -> np.ndarray:
        """(N,) >= 1: error scale factor for the mean's own uncertainty beyond the labelled range."""
        X = self.basis(raw)
        var = np.einsum("ni,ij,nj->n", X, np.asarray(self.cov), X)  # (N,) points²
        return np.sqrt(1.0 + np.maximum(var - self.base_var, 0.0) / self.error.sd() ** 2)

    def to_json(self) -> dict:
        return {k: (asdict(v) if isinstance(v, Error) else [list(r) for r in v] if k == "cov" else v)
                for k, v in ((f, getattr(self, f)) for f in self.__dataclass_fields__)}

    @classmethod
    def from_json(cls, d: dict) -> "Calibration":
        return cls(**{**d, "cov": tuple(tuple(r) for r in d["cov"]), "error": Error(**d["error"])})


def fit(level: np.ndarray, y: np.ndarray, lineage: np.ndarray) -> Calibration:
    """Fit the distribution from labelled bases' levels and measured scores, (T,) each, points."""
    level, y = np.asarray(level, float), np.asarray(y, float)
    groups = sorted(set(np.asarray(lineage).tolist()))
    knot = float(np.quantile(level, KNOT))
    X = np.stack([np.ones_like(level), level - knot, np.maximum(level - knot, 0.0)], axis=1)  # (T, 3)
    out = [np.asarray(lineage) == g for g in groups]  # (G,) masks of each lineage

    def lstsq(A, b):
        return np.linalg.lstsq(A, b, rcond=None)[0]

    full, folds = lstsq(X, y), np.array([lstsq(X[~m], y[~m]) for m in out])  # (3,), (G, 3)
    plain, plain_folds = lstsq(X[:, :2], y)[1], np.array([lstsq(X[~m, :2], y[~m])[1] for m in out])
    skill_se = _jackknife_se(plain_folds)
    factor = _james_stein(plain, skill_se) * np.array([_james_stein(full[1], _jackknife_se(folds[:, 1])),
                                                       _james_stein(full[2], _jackknife_se(folds[:, 2]), signed=True)])

    def shrunk(coef, rows):
        slope = float(np.clip(coef[1] * factor[0], MIN_SLOPE, MAX_SLOPE))
        bend = max(coef[2] * factor[1], MIN_SLOPE - slope)
        intercept = float(np.mean(y[rows] - X[rows, 1:] @ [slope, bend]))
        return np.array([intercept, slope, bend])

    coef = shrunk(full, np.ones(len(y), bool))
    fold_coefs = np.array([shrunk(c, ~m) for c, m in zip(folds, out)])  # (G, 3)
    residuals = np.empty(len(y))
    for c, m in zip(fold_coefs, out):
        residuals[m] = y[m] - X[m] @ c  # lineage-out residuals of the mean
    g = len(groups)
    dev = (folds - folds.mean(axis=0)) * np.r_[1.0, factor]  # the least-squares jackknife spread, shrunk as the slopes
    cov = (g - 1) / g * dev.T @ dev if g > 1 else np.zeros((3, 3))  # (3, 3) points²
    base_var = float(np.mean(np.einsum("ni,ij,nj->n", X, cov, X)))
    return Calibration(knot, *map(float, coef), tuple(map(tuple, cov.tolist())), base_var,
                       _fit_error(residuals, np.asarray(lineage)), float(plain), skill_se)


def _jackknife_se(values: np.ndarray) -> float:
    g = len(values)
    return float(math.sqrt((g - 1) / g * np.sum((values - values.mean()) ** 2))) if g > 1 else math.inf


def _james_stein(value: float, se: float, signed: bool = False) -> float:
    """Positive-part James–Stein factor max(0, 1 - se²/value²); a slope at or below zero gets 0."""
    if value == 0.0 or (value < 0.0 and not signed) or not math.isfinite(se):
        return 0.0
    return max(0.0, 1.0 - (se / value) ** 2)


def _fit_error(residuals: np.ndarray, lineage: np.ndarray) -> Error:
    """Two-piece t with mean 0 by maximum likelihood over DOFS, then scaled to cover LEVEL of the residuals."""
    best = None
    for dof in DOFS:
        m1 = S.mean_positive(dof)
        low = high = float(np.sqrt(np.mean(residuals ** 2))) + 1e-9
        for _ in range(20):  # alternate: scales per side given the median, the median given the scales
            loc = -(high - low) * m1
            x = residuals - loc
            low, high = (_t_scale(x[side], dof) for side in (x < 0, x >= 0))
        loc = -(high - low) * m1
        x = residuals - loc
        scale = np.where(x < 0, low, high)
        ll = float(np.sum(S.logpdf(x / scale, dof) - np.log(scale)))
        if best is None or ll > best[0]:
            best = (ll, dof, low, high)
    _, dof, low, high = best
    x = residuals + (high - low) * S.mean_positive(dof)
    std = x / np.where(x < 0, low, high)  # standardised: t(dof) under the model
    share = min(1.0, LEVEL * (len(std) + 1) / len(std))  # split conformal's finite-sample correction
    stretch = float(np.quantile(np.abs(std), share) / S.ppf(0.5 + LEVEL / 2, dof))
    low, high = low * stretch, high * stretch
    return Error(-(high - low) * S.mean_positive(dof), low, high, dof,
                 lineage_correlation(std / stretch, lineage))


def _t_scale(x: np.ndarray, dof: float) -> float:
    """Maximum-likelihood scale of a half t (iteratively reweighted), points."""
    if x.size == 0:
        return 1e-9
    s = float(np.sqrt(np.mean(x * x))) + 1e-9
    for _ in range(15):
        s = float(np.sqrt(np.mean((dof + 1) / (dof + (x / s) ** 2) * x * x))) + 1e-9
    return s


@dataclass(frozen=True)
class Predictive:
    """The joint distribution of a pool's measured scores (module doc)."""

    mean: np.ndarray  # (N,) points
    scale: np.ndarray  # (N,) h: factor on the error, >= 1
    group: np.ndarray  # (N,) int lineage index
    error: Error

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), (N,) each, points: the central ``level`` interval."""
        t = S.ppf(0.5 + level / 2, self.error.dof)
        e = self.error
        return self.mean + self.scale * (e.loc - e.low * t), self.mean + self.scale * (e.loc + e.high * t)

    def to_points(self, w: np.ndarray, rows=slice(None)) -> np.ndarray:
        """Standardised errors w (..., N) → scores, points."""
        e = self.error
        return self.mean[rows] + self.scale[rows] * (e.loc + np.where(w < 0, e.low, e.high) * w)

    def standardised(self, values: np.ndarray) -> np.ndarray:
        """Scores (..., N) → standardised errors w: the inverse of ``to_points``."""
        e = self.error
        x = (values - self.mean) / self.scale - e.loc
        return x / np.where(x < 0, e.low, e.high)

    def draws(self, n: int, rng: np.random.Generator, rows=None, shift=None, spread=None) -> np.ndarray:
        """(n, R) joint draws of the scores of ``rows`` (all by default). ``shift`` and ``spread``, (G,)
        each: the lineage effects' conditional mean and variance (plan's measured siblings; 0 and 1)."""
        return self.to_points(self._standard_draws(n, rng, rows, shift, spread)[0], rows)

    def _standard_draws(self, n, rng, rows=None, shift=None, spread=None):
        """(w (n, R), centre (n, R), sd (n, R)): standardised errors and their mean and sd given the
        draw's lineage effects (shared tail factor and normal part)."""
        rows = np.arange(len(self.mean)) if rows is None else np.asarray(rows)
        groups, local = np.unique(self.group[rows], return_inverse=True)
        rho = self.error.rho
        shift = np.zeros(len(groups)) if shift is None else np.asarray(shift)[groups]
        spread = np.ones(len(groups)) if spread is None else np.asarray(spread)[groups]
        tau = S.standard(rng, self.error.dof, (n, len(groups)))  # (n, G) shared tails per lineage
        u = rng.standard_normal((n, len(groups))) * np.sqrt(spread)  # (n, G)
        centre = math.sqrt(rho) * (shift + tau * u)[:, local]  # (n, R)
        sd = math.sqrt(1 - rho) * tau[:, local]  # (n, R)
        return centre + sd * rng.standard_normal((n, len(rows))), centre, sd

    def top_k(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """(N,) P(among the k best), from joint draws of every candidate (at most CELLS candidate-draws in
        all), Rao–Blackwellised: per draw, a candidate's probability of beating the k-th best of the
        others given its lineage's draw, averaged — smooth, summing to k, and never exactly 0."""
        n = len(self.mean)
        if k >= n:
            return np.ones(n)
        w, centre, sd = self._standard_draws(max(MIN_DRAWS, min(N_DRAWS, CELLS // n)), rng)  # (D, N) each
        y = self.to_points(w)  # (D, N) points
        best = -np.partition(-y, (k - 1, k), axis=1)  # (D, N): columns k-1 and k are the k-th and (k+1)-th best
        bar = np.where(y >= best[:, k - 1 : k], best[:, k : k + 1], best[:, k - 1 : k])  # (D, N) others' k-th best
        return _normal_sf((self.standardised(bar) - centre) / sd).mean(axis=0)


def predictive(cal: Calibration, raw: np.ndarray, wider: np.ndarray, group: np.ndarray) -> Predictive:
    """The distribution of a pool whose method predicts ``raw`` (N,), widened ``wider`` (N,) for missing inputs."""
    raw = np.asarray(raw, float)
    return Predictive(cal.mean(raw), np.asarray(wider, float) * cal.stretch(raw), np.asarray(group), cal.error)


def rank_view(cal: Calibration, raw: np.ndarray, wider: np.ndarray, group: np.ndarray, level: float, top_k: int,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What ``rank`` shows, (N,) each: the prediction (the predictive mean), the ``level`` interval (low,
    high) and P(top ``top_k``), simulated with ``seed``."""
    dist = predictive(cal, raw, wider, group)
    low, high = dist.interval(level)
    return dist.mean, low, high, dist.top_k(top_k, np.random.default_rng(seed))


_ZELEN = (0.319381530, -0.356563782, 1.781477937, -1.821255978, 1.330274429)  # Abramowitz & Stegun 26.2.17


def _normal_sf(z: np.ndarray) -> np.ndarray:
    """Standard normal survival function, absolute error < 7.5e-8 (numpy has no erf)."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.2316419 * a)
    poly = t * (_ZELEN[0] + t * (_ZELEN[1] + t * (_ZELEN[2] + t * (_ZELEN[3] + t * _ZELEN[4]))))
    tail = np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi) * poly  # P(Z > |z|)
    return np.where(z >= 0, tail, 1.0 - tail)
