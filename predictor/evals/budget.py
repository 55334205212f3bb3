"""`evaluate --budget N`: simulate the decision basepick serves — which few bases of a pool to train.

Random pools of ``pool_size`` labelled bases; a policy trains one base after another, each run
revealing its label; regret after k runs = the pool's best score − the best score trained (points).

No pool's labels ever train what scores it. For every pool, only the labelled bases outside it (T)
are used, in two levels of leave-lineage-out:
- inner, on T alone: each method's leave-lineage-out predictions choose the ranking method
  (predictor.models.methods.choose, as ``fit`` does) and fit the chosen method's predictive
  distribution (predictor.models.predictive, as ``fit`` does: the one ``rank`` and ``plan`` use);
- outer: a pool member of lineage g is scored by a learned method (the LightGBM predictor, ridge)
  fitted on T without lineage g; a rule (mean leaderboard score, log params) scores the whole pool
  with its line fitted on T — the rule's order does not depend on labels, only its map to points.

Policies: ``plan`` (sequential: expected improvement under the lineage-correlated predictive
distribution, conditioning on every revealed label — predictor.models.bayes), ``static`` (the chosen
method's top k), ``mean score order`` (mean leaderboard v2 score, no fit), ``default first`` (the
pool's default Llama-3.x models, largest bucket first, then the chosen method's order) and
``random`` (exact expectation over all orders); for reference, ``LightGBM top-k`` always ranks by
the LightGBM predictor, whatever the choice (what ``rank`` did before it chose).

Brackets: percentile bootstrap over pools. They are the simulation's sampling error only: the pools
overlap and are all drawn from the same ~40 labelled bases in 9 lineages, so they say nothing about
how the figures would move with other bases. ``benchmarks/budget_lineage_jackknife.py`` measures that
(the whole simulation repeated without each lineage); benchmarks/RESULTS.md quotes both.

A pool must leave enough bases outside it to fit every method once a lineage is held out
(``check_sizes``): otherwise a pool member would get no prediction, and no policy may choose one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from predictor.data import dataset as DS
from predictor.errors import DataError
from predictor.models import bayes as Y
from predictor.models import methods as Mt
from predictor.models import predictive as P
from predictor.models.baselines import DEFAULT_LLAMA
from predictor.models.model import ModelConfig

POLICIES = ("plan", "static", "mean score order", "default first", "random", "LightGBM top-k")
LEARNED = (Mt.RIDGE, Mt.PREDICTOR)
MIN_OUTSIDE = 16  # labelled bases a pool must leave outside it to fit and calibrate on
BUCKET_ORDER = (">=6B", "3-6B", "<3B")
BRACKETS = ("percentile bootstrap over pools: the simulation's sampling error only, not the uncertainty of "
            "having these ~40 labelled bases (see benchmarks/budget_lineage_jackknife.py)")


@dataclass
class BudgetResult:
    budget: int
    pool_size: int
    n_pools: int
    regret: dict[str, np.ndarray] = field(repr=False)  # policy → (pools, budget) regret after 1..budget runs
    within: dict[str, np.ndarray] = field(repr=False)  # policy → (pools, budget) P(regret <= 1 point)
    chosen: dict[str, float]  # method → share of pools whose inner choice it was
    sd: float  # median predictive error sd over pools, points
    rho: float  # median lineage correlation over pools
    n_boot: int = 1000
    seed: int = 0

    def figures(self) -> dict[str, list[dict]]:
        """policy → [{runs, mean_regret, mean_regret_ci95, within_1pt, within_1pt_ci95}] for runs 1..budget."""
        rng = np.random.default_rng(self.seed)
        resample = rng.integers(0, self.n_pools, size=(self.n_boot, self.n_pools))  # (B, P) pools
        out = {}
        for policy, regret in self.regret.items():
            within = self.within[policy]  # (P, budget)
            rows = []
            for k in range(self.budget):
                row = {"runs": k + 1, "mean_regret": round(float(regret[:, k].mean()), 4),
                       "within_1pt": round(float(within[:, k].mean()), 4)}
                if self.n_boot:
                    for key, values in (("mean_regret", regret[:, k]), ("within_1pt", within[:, k])):
                        boot = values[resample].mean(axis=1)
                        row[f"{key}_ci95"] = [round(float(q), 4) for q in np.quantile(boot, [0.025, 0.975])]
                rows.append(row)
            out[policy] = rows
        return out

    def to_json(self) -> dict:
        return {"runs": self.budget, "pool_size": self.pool_size, "pools": self.n_pools,
                "policies": self.figures(), "ci95": BRACKETS, "chosen_in_pools": self.chosen,
                "median_residual_sd": round(self.sd, 3), "median_lineage_correlation": round(self.rho, 3)}


def draw_pools(n: int, pool_size: int, n_pools: int, seed: int) -> list[np.ndarray]:
    """``n_pools`` random pools of ``pool_size`` of n labelled bases (sorted row indices), seeded."""
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, size=pool_size, replace=False)) for _ in range(n_pools)]


def simulate(ds: DS.Dataset, *, budget: int, pool_size: int = 12, n_pools: int = 40, n_boot: int = 1000,
             seed: int = 0, config: ModelConfig | None = None, pools: list[np.ndarray] | None = None) -> BudgetResult:
    """Regret after 1..budget runs of every policy on ``n_pools`` random pools (see the module doc);
    ``pools`` (row indices) replaces the random ones, unchecked (benchmarks/budget_lineage_jackknife.py)."""
    config = config or ModelConfig()
    n = len(ds.y)
    if pools is None:
        check_sizes(ds.lineage, budget, pool_size)
        pools = draw_pools(n, pool_size, n_pools, seed)
    n_pools = len(pools)
    regret = {p: np.zeros((n_pools, budget)) for p in POLICIES}
    within = {p: np.zeros((n_pools, budget)) for p in POLICIES}
    chosen, sds, rhos = [], [], []
    for p, pool in enumerate(pools):
        outside = np.setdiff1d(np.arange(n), pool)
        name, scores, calibration = _score_pool(ds, pool, outside, config, seed)
        predicted = scores[name]
        chosen.append(name)
        sds.append(calibration.error.sd())
        rhos.append(calibration.error.rho)
        y = ds.y[pool]
        orders = {
            "static": _order(predicted, ds, pool),
            "mean score order": _order(ds.columns["mean_v2"][pool], ds, pool),
            "default first": _default_first(predicted, ds, pool),
            "LightGBM top-k": _order(scores[Mt.PREDICTOR], ds, pool),
        }
        _, groups = np.unique(ds.lineage[pool], return_inverse=True)
        belief = Y.Belief(P.predictive(calibration, predicted, np.ones(len(pool)), groups), np.full(len(pool), np.nan))
        orders["plan"] = sequential(belief, y, budget)
        for policy, order in orders.items():
            regret[policy][p] = regret_after(y, order, budget)
            within[policy][p] = regret[policy][p] <= Y.WITHIN + 1e-9
        regret["random"][p], within["random"][p] = random_regret(y, budget)
    shares = {m: round(chosen.count(m) / n_pools, 4) for m in Mt.METHODS if m in chosen}
    return BudgetResult(budget, pool_size, n_pools, regret, within, shares, float(np.median(sds)),
                        float(np.median(rhos)), n_boot=n_boot, seed=seed)


def check_sizes(lineage: np.ndarray, budget: int | None, pool_size: int, smallest: int = 2) -> None:
    """DataError unless every pool of ``pool_size`` leaves MIN_OUTSIDE bases outside it, and DS.MIN_TRAIN
    once its largest lineage is held out; and unless 1 <= budget <= pool_size."""
    n = len(lineage)
    largest = max(np.unique(lineage, return_counts=True)[1], default=0)
    most = min(n - MIN_OUTSIDE, n - largest - DS.MIN_TRAIN)
    if most < smallest:
        raise DataError(f"{n} labelled bases (largest lineage {largest}) are too few to simulate pools of candidates: each "
                        f"pool must leave {MIN_OUTSIDE} outside it, and {DS.MIN_TRAIN} once a lineage is held out; add labels")
    if not smallest <= pool_size <= most:
        raise DataError(f"--pool-size {pool_size}: must be {smallest} to {most} ({n} labelled bases; each pool must leave "
                        f"{MIN_OUTSIDE} outside it, and {DS.MIN_TRAIN} to fit on once its largest lineage, {largest} bases, "
                        "is held out)")
    if budget is not None and not 1 <= budget <= pool_size:
        raise DataError(f"--budget {budget}: must be 1 to the pool size, {pool_size}")


def _score_pool(ds: DS.Dataset, pool: np.ndarray, outside: np.ndarray, config: ModelConfig, seed: int):
    """(chosen method, every method's predictions for the pool, the chosen one's predictive distribution's
    fit), from T = the labelled bases outside the pool only."""
    T = ds.take(outside)
    scores = {m: np.full(len(pool), np.nan) for m in Mt.METHODS}
    inner = {m: np.full(len(T.y), np.nan) for m in Mt.METHODS}
    for g in sorted(set(T.lineage.tolist()) | set(ds.lineage[pool].tolist())):
        held, in_pool = T.lineage == g, ds.lineage[pool] == g
        if (~held).sum() < DS.MIN_TRAIN:
            continue  # as evaluate.out_of_fold: too few rows left to fit on
        for name in LEARNED:
            model = Mt.fit(name, T.take(~held), config)
            if held.any():
                inner[name][held] = model.predict(T.take(held).columns)
            if in_pool.any():
                scores[name][in_pool] = model.predict(ds.take(pool[in_pool]).columns)
    for name in Mt.RULES:
        scores[name] = Mt.fit(name, T, config).predict(ds.take(pool).columns)
        inner[name] = DS.out_of_fold(T, Mt.fit_predict(name, config), "lineage")
    choice = Mt.choose(T, config, seed=seed, oof=inner)
    # the level rank sees, as fit stores it: a rule's line fitted on T; a learned method's out-of-fold prediction
    level = Mt.rule_order(choice.name, T, config) if choice.name in Mt.RULES else inner[choice.name]
    known = ~np.isnan(level)
    return choice.name, scores, P.fit(level[known], T.y[known], T.lineage[known])


def _order(score: np.ndarray, ds: DS.Dataset, pool: np.ndarray) -> np.ndarray:
    """Pool positions, highest score first; ties (and NaN, last) by model id."""
    ids = [ds.ids[i] for i in pool]
    return np.array(sorted(range(len(pool)), key=lambda j: (-np.nan_to_num(score[j], nan=-np.inf), ids[j])))


def _default_first(predicted: np.ndarray, ds: DS.Dataset, pool: np.ndarray) -> np.ndarray:
    ids = [ds.ids[i] for i in pool]
    defaults = [ids.index(DEFAULT_LLAMA[b]) for b in BUCKET_ORDER if DEFAULT_LLAMA[b] in ids]
    rest = [j for j in _order(predicted, ds, pool) if j not in defaults]
    return np.array(defaults + rest)


def sequential(belief: Y.Belief, truth: np.ndarray, budget: int) -> np.ndarray:
    """The ``plan`` policy: pick by expected improvement, reveal the truth, update, repeat."""
    order = []
    for _ in range(budget):
        i, _ = Y.next_run(belief)
        order.append(i)
        belief = belief.reveal(i, truth[i])
    return np.array(order)


def regret_after(y: np.ndarray, order: np.ndarray, budget: int) -> np.ndarray:
    """(budget,) the pool's best minus the best of the first k trained, k = 1..budget."""
    return y.max() - np.maximum.accumulate(y[order[:budget]])


def random_regret(y: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(expected regret, P(regret <= 1 point)), (budget,) each, of k runs drawn at random, exactly.

    With scores sorted best first, v_1 >= ... >= v_n, the best of k random runs is v_j with
    probability C(n - j, k - 1) / C(n, k).
    """
    v = np.sort(y)[::-1]
    n = len(v)
    regret, within = np.empty(budget), np.empty(budget)
    for k in range(1, budget + 1):
        p = np.array([math.comb(n - j, k - 1) for j in range(1, n + 1)]) / math.comb(n, k)  # (n,)
        regret[k - 1] = v[0] - float(p @ v)
        within[k - 1] = float(p[v >= v[0] - Y.WITHIN - 1e-9].sum())
    return regret, within
