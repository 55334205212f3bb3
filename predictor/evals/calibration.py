"""`evaluate --calibration`: are the numbers users read at the top of ``rank`` and ``plan`` honest?

Random pools of ``pool_size`` labelled bases, drawn as ``evaluate --budget`` draws them. No pool's
labels ever reach what is said about it: for each pool only the bases outside it (T) are used, through
``fit``'s own procedure (predictor.models.calibrate.fit_chosen: every ranking method, the choice by
leave-lineage-out, the calibration of the chosen one). The fitted method then speaks about the pool
exactly as ``rank`` and ``plan`` would about a user's candidates (predictor.models.predictive): the
shown prediction, its interval, P(top k), and plan's P(best of the pool) before anything is measured.
Against the pool's measured scores:

- the interval's coverage among the k top-ranked members of each pool and among the rest;
- the mean residual (measured − shown, points) among the k top-ranked and among the rest;
- reliability of P(top k) and of P(best): per stated bin, the mean stated probability against the
  observed share, with the number of cases; and the same for every P(top k) stated at least 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from predictor.data import dataset as DS
from predictor.evals import budget as BU
from predictor.models import bayes as Y
from predictor.models import methods as Mt
from predictor.models import predictive as P
from predictor.models.calibrate import fit_chosen
from predictor.models.model import ModelConfig
from predictor.models.uncertainty import widening

BINS = np.round(np.linspace(0.0, 1.0, 11), 2)  # stated-probability bins, [lo, hi); the last includes 1
HIGH = 0.5  # "stated at least this": the P(top k) a user acts on
FIT_SEED = RANK_SEED = 0  # the seeds `fit`, `rank` and `plan` use by default
TOP_K = 3  # P(top k) checked, rank's default


@dataclass(frozen=True)
class CalibrationResult:
    pool_size: int  # labelled bases per pool
    n_pools: int  # pools simulated
    top_k: int  # the k of P(top k) and of "the k top-ranked"
    level: float  # nominal interval coverage
    seed: int  # of the pool draws
    truth: np.ndarray = field(repr=False)  # (pools, pool_size) measured score, points
    shown: np.ndarray = field(repr=False)  # (pools, pool_size) the prediction rank shows, points
    low: np.ndarray = field(repr=False)  # (pools, pool_size) interval, points
    high: np.ndarray = field(repr=False)  # (pools, pool_size) points
    position: np.ndarray = field(repr=False)  # (pools, pool_size) rank in the pool, 0 = first row
    p_top: np.ndarray = field(repr=False)  # (pools, pool_size) rank's P(top k)
    p_best: np.ndarray = field(repr=False)  # (pools, pool_size) plan's P(best of the pool)
    chosen: dict[str, float] = field(default_factory=dict)  # method → share of pools whose choice it was

    def figures(self) -> dict:
        top = self.position < self.top_k  # (pools, pool_size) the k first rows
        covered = (self.truth >= self.low) & (self.truth <= self.high)
        residual = self.truth - self.shown  # points
        in_top = _true_rank(self.truth) < self.top_k  # measured top k of each pool
        is_best = _true_rank(self.truth) == 0
        stated_high = self.p_top >= HIGH
        return {
            "interval_coverage": {"top_k": _mean(covered[top]), "rest": _mean(covered[~top]),
                                  "n_top_k": int(top.sum()), "n_rest": int((~top).sum())},
            "mean_residual": {"top_k": _mean(residual[top]), "rest": _mean(residual[~top])},
            "p_top_k_at_least_half": {"n": int(stated_high.sum()), "stated": _mean(self.p_top[stated_high]),
                                      "observed": _mean(in_top[stated_high])},
            "p_top_k": reliability(self.p_top.ravel(), in_top.ravel()),
            "p_best": reliability(self.p_best.ravel(), is_best.ravel()),
        }

    def to_json(self) -> dict:
        return {"pool_size": self.pool_size, "pools": self.n_pools, "top_k": self.top_k, "level": self.level,
                "seed": self.seed, "chosen_in_pools": self.chosen, **_rounded(self.figures())}


def reliability(stated: np.ndarray, happened: np.ndarray) -> list[dict]:
    """Per bin of stated probability ([lo, hi); the last bin includes 1): cases, mean stated, observed share."""
    which = np.clip(np.searchsorted(BINS, stated, side="right") - 1, 0, len(BINS) - 2)  # (C,) bin index
    rows = []
    for b in range(len(BINS) - 1):
        m = which == b
        if m.any():
            rows.append({"bin": [float(BINS[b]), float(BINS[b + 1])], "n": int(m.sum()),
                         "stated": float(stated[m].mean()), "observed": float(happened[m].mean())})
    return rows


def simulate(ds: DS.Dataset, *, pool_size: int = 12, n_pools: int = 40, top_k: int = TOP_K, level: float = 0.8,
             seed: int = 0, config: ModelConfig | None = None) -> CalibrationResult:
    """What rank and plan would have said about ``n_pools`` random pools, fitted outside each (module doc)."""
    config = config or ModelConfig()
    n = len(ds.y)
    BU.check_sizes(ds.lineage, None, pool_size, smallest=top_k + 1)
    rng = np.random.default_rng(seed)
    shape = (n_pools, pool_size)
    out = {k: np.zeros(shape) for k in ("truth", "shown", "low", "high", "p_top", "p_best")}
    position = np.zeros(shape, dtype=int)
    chosen = []
    for p in range(n_pools):
        pool = np.sort(rng.choice(n, size=pool_size, replace=False))
        model = fit_chosen(ds.take(np.setdiff1d(np.arange(n), pool)), config, seed=FIT_SEED)
        chosen.append(model.calibration_["method"])
        said = speak(model, ds.take(pool), level, top_k)
        for key, value in said.items():
            out[key][p] = value
        out["truth"][p] = ds.y[pool]
        ids = [ds.ids[i] for i in pool]
        order = sorted(range(pool_size), key=lambda j: (-said["shown"][j], ids[j]))  # as rank sorts
        position[p, order] = np.arange(pool_size)
    shares = {m: round(chosen.count(m) / n_pools, 4) for m in Mt.METHODS if m in chosen}
    return CalibrationResult(pool_size, n_pools, top_k, level, seed, position=position, chosen=shares, **out)


def speak(model, pool: DS.Dataset, level: float, top_k: int) -> dict[str, np.ndarray]:
    """What rank (shown, low, high, p_top) and plan (p_best, nothing measured) say about a pool, (M,) each."""
    cal = model.calibration_
    calibration = P.Calibration.from_json(cal["predictive"])
    wider = widening(cal, pool.columns, pool.ids)
    _, group = np.unique(pool.lineage, return_inverse=True)
    raw = np.clip(model.predict_members(pool.columns), 0.0, 100.0).mean(axis=0)  # (M,) as rank predicts
    shown, low, high, p_top = P.rank_view(calibration, raw, wider, group, level, top_k, RANK_SEED)
    belief = Y.Belief(P.predictive(calibration, np.clip(model.predict(pool.columns), 0.0, 100.0), wider, group),
                      np.full(len(pool.y), np.nan))  # as plan predicts
    draws = belief.draws(Y.N_DRAWS, np.random.default_rng(RANK_SEED))
    return {"shown": shown, "low": np.maximum(low, 0.0), "high": np.minimum(high, 100.0), "p_top": p_top,
            "p_best": Y.odds(belief, [], draws)[0]}


def _true_rank(truth: np.ndarray) -> np.ndarray:
    """(pools, pool_size) measured rank within each pool, 0 = best (ties: the earlier member)."""
    order = np.argsort(-truth, axis=1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(truth.shape[1])[None, :].repeat(len(truth), axis=0), axis=1)
    return out


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if np.size(x) else None


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
