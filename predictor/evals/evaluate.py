"""Out-of-fold evaluation of the predictor and the baselines, in the same folds (predictor.data.dataset).

Everything the predictor learns — the ridge offset, the boosters — is fitted inside the training
part of each fold. The prediction intervals checked are those of the method ``fit`` would choose,
with ``fit``'s choice and predictive distribution made inside each training part (nested_intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from predictor.data.dataset import (
    MIN_TRAIN,
    SPLITS,
    Dataset,
    folds,
    load_dataset,
    out_of_fold,
    require_folds,
    train_mask,
)
from predictor.errors import DataError
from predictor.evals import budget as BU
from predictor.evals import calibration as CA
from predictor.models import baselines as B
from predictor.models import methods as Mt
from predictor.models import metrics as M
from predictor.models.calibrate import fit_chosen
from predictor.models.model import ModelConfig, RewardPredictor, with_presence

PREDICTOR = "basepick (LightGBM)"
WITHOUT_PRESENCE = "basepick without presence_*"
# given to rank as columns, unused by the predictor: evaluated here with them, to show why (issue 13)
UNUSED_FEATURES = ("pretrain_tokens_t", "post_training")
WITH_UNUSED = "basepick + " + ", ".join(UNUSED_FEATURES)
HEADLINE = ("spearman", "kendall", "mae", "coverage@3", "coverage@5", "coverage@10", "regret@1/bucket", "best_of_3_regret/bucket", "regret@1/pooled")


def predictor_method(config: ModelConfig):
    def fit_predict(train: Dataset, test: Dataset) -> np.ndarray:
        return RewardPredictor(config).fit(train.columns, train.y).predict(test.columns)

    return fit_predict


def lineage_residuals(ds: Dataset, config: ModelConfig) -> np.ndarray:
    """(N,) leave-one-lineage-out residuals (measured − predicted) of the LightGBM predictor."""
    return ds.y - out_of_fold(ds, predictor_method(config), "lineage")


def nested_intervals(ds: Dataset, config: ModelConfig, split: str, level: float,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, low, high), (N,) each, out of fold, of the method ``fit`` would choose: in each fold,
    ``fit``'s own procedure (choice and predictive distribution) runs on the training part only and
    predicts the test part as ``rank`` would. NaN where a training part is too small to choose on."""
    out = [np.full(len(ds.y), np.nan) for _ in range(3)]
    for test in folds(ds, split, seed):
        train = train_mask(ds, test, split)
        if train.sum() < MIN_TRAIN or not test.any():
            continue
        inner = ds.take(train)
        try:
            require_folds(inner, "lineage", "an inner fold")
        except DataError:
            continue  # too few bases or lineages to choose and calibrate a method on
        model = fit_chosen(inner, config, seed=CA.FIT_SEED)
        part = ds.take(test)
        said = CA.speak(model, part, level, CA.TOP_K)
        for values, key in zip(out, ("shown", "low", "high")):
            values[test] = said[key]
    return out[0], out[1], out[2]


@dataclass
class MethodResult:
    name: str
    metrics: dict[str, float]
    low: dict[str, float]  # lineage-bootstrap 95% interval
    high: dict[str, float]
    predictions: np.ndarray = field(repr=False)


@dataclass
class Evaluation:
    recipe: str
    target: str
    split: str
    n: int
    ids: list[str]
    truth: np.ndarray
    lineage: np.ndarray
    methods: list[MethodResult]
    interval_level: float
    interval_coverage: float  # of the method fit chooses, chosen and calibrated inside each fold (nested_intervals)
    interval_low: np.ndarray = field(repr=False)  # (N,) out-of-fold interval, points
    interval_high: np.ndarray = field(repr=False)
    interval_pred: np.ndarray = field(repr=False)  # (N,) the prediction the interval surrounds, points
    verdict: list[str] = field(default_factory=list)  # plain sentences: does the predictor beat the baselines?
    chosen_method: str | None = None  # what `fit` would rank with (predictor.models.methods.choose), with --budget
    budget: object | None = field(default=None, repr=False)  # budget.BudgetResult, with --budget
    calibration: object | None = field(default=None, repr=False)  # calibration.CalibrationResult, with --calibration

    def method(self, name: str) -> MethodResult:
        return next(m for m in self.methods if m.name == name)

    def to_json(self) -> dict:
        def clean(d):
            return {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else round(v, 4)) for k, v in d.items()}

        return {
            "schema_version": 1,
            "recipe": self.recipe,
            "target": self.target,
            "split": self.split,
            "n_models": self.n,
            "interval": {"level": self.interval_level, "empirical_coverage": round(self.interval_coverage, 4),
                         "method": "the method fit chooses, chosen and calibrated inside each training fold"},
            "methods": [
                {"name": m.name, "metrics": clean(m.metrics), "ci95_low": clean(m.low), "ci95_high": clean(m.high)}
                for m in self.methods
            ],
            "predictions": [
                {"model_id": i, "lineage": str(g), "measured": float(t),
                 **{m.name: (None if math.isnan(m.predictions[k]) else round(float(m.predictions[k]), 3)) for m in self.methods}}
                for k, (i, g, t) in enumerate(zip(self.ids, self.lineage, self.truth))
            ],
            "verdict": self.verdict,
            **({"chosen_method": self.chosen_method, "budget": self.budget.to_json()} if self.budget else {}),
            **({"calibration": self.calibration.to_json()} if self.calibration else {}),
        }


def evaluate(
    label_sources: list,
    *,
    recipe: str = "regression",
    target: str = "score",
    split: str = "lineage",
    config: ModelConfig | None = None,
    level: float = 0.8,
    n_boot: int = 1000,
    seed: int = 0,
    with_baselines: bool = True,
    feature_sources: list = (),
    allow_partial: bool = False,
    on_duplicate: str = "error",
    note=lambda s: None,
    budget: int | None = None,
    pool_size: int = 12,
    n_pools: int = 40,
    calibration: bool = False,
) -> Evaluation:
    """Evaluate the predictor (and baselines) out of fold; metrics with lineage-bootstrap intervals.

    When feature files give presence_* columns for labelled models, the predictor is evaluated with
    them (first row) and without them (second row); with baselines, also with pretrain_tokens_t and
    post_training, which it does not use. ``budget``: also simulate the budgeted decision
    (predictor.evals.budget) and name the ranking method ``fit`` would choose. ``calibration``: also
    check rank's and plan's stated uncertainty out of pool (predictor.evals.calibration).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    base_config = config or ModelConfig()
    ds = load_dataset(label_sources, recipe, target, feature_sources, allow_partial=allow_partial,
                      on_duplicate=on_duplicate, note=note)
    require_folds(ds, split, "evaluate", seed)
    if budget is not None:
        BU.check_sizes(ds.lineage, budget, pool_size)  # before the slow part
    if calibration:
        BU.check_sizes(ds.lineage, None, pool_size, smallest=CA.TOP_K + 1)
    config = with_presence(base_config, ds.columns)
    methods = {PREDICTOR: predictor_method(config)}
    if config != base_config:
        methods[WITHOUT_PRESENCE] = predictor_method(base_config)
    if with_baselines:
        methods[WITH_UNUSED] = predictor_method(replace(config, features=config.features + UNUSED_FEATURES))
        methods.update(B.BASELINES)
    results = []
    covered = None
    for name, fit_predict in methods.items():
        pred = out_of_fold(ds, fit_predict, split, seed)
        covered = ~np.isnan(pred) if covered is None else covered
        rows = np.flatnonzero(covered)
        sub_pred, sub_true, sub_bucket, sub_lineage = pred[rows], ds.y[rows], ds.bucket[rows], ds.lineage[rows]

        def stat(idx, p=sub_pred, t=sub_true, b=sub_bucket):
            return M.selection_metrics(p[idx], t[idx], b[idx])

        metrics = stat(np.arange(len(rows)))
        low, high = M.group_bootstrap(sub_lineage, stat, n_boot=n_boot, seed=seed)
        if name in B.NO_MAE:
            for d in (metrics, low, high):
                d["mae"] = math.nan
        results.append(MethodResult(name, metrics, low, high, pred))
    mid, lo, hi = nested_intervals(ds, base_config, split, level, seed)
    known = ~np.isnan(lo)
    coverage = M.interval_coverage(lo[known], hi[known], ds.y[known]) if known.any() else math.nan
    ev = Evaluation(
        recipe=recipe, target=target, split=split, n=int(covered.sum()), ids=ds.ids, truth=ds.y,
        lineage=ds.lineage, methods=results, interval_level=level, interval_coverage=coverage,
        interval_low=lo, interval_high=hi, interval_pred=mid, verdict=verdict(results),
    )
    if budget is not None:
        learned = (Mt.PREDICTOR, Mt.RIDGE)  # the same leave-lineage-out predictions as above: not refitted
        oof = {m.name: m.predictions for m in results if m.name in learned} if split == "lineage" else {}
        ev.chosen_method = Mt.choose(ds, base_config, seed=seed, oof=oof).name
        ev.budget = BU.simulate(ds, budget=budget, pool_size=pool_size, n_pools=n_pools, n_boot=n_boot, seed=seed,
                                config=base_config)
    if calibration:
        ev.calibration = CA.simulate(ds, pool_size=pool_size, n_pools=n_pools, level=level, seed=seed, config=base_config)
    return ev


def verdict(results: list[MethodResult]) -> list[str]:
    """Plain statements per headline metric: does the predictor beat the best baseline? "beats" and "does
    NOT beat" only when their 95% lineage-bootstrap intervals do not overlap; else "is not distinguishable"."""
    ours = results[0]
    others = [m for m in results[1:] if m.name in B.BASELINES]
    if not others:
        return []
    lines = []
    for metric, better in (("spearman", max), ("regret@1/bucket", min), ("coverage@5", max)):
        values = {m.name: m.metrics[metric] for m in others if not math.isnan(m.metrics[metric])}
        best_name = better(values, key=values.get)
        best = next(m for m in others if m.name == best_name)
        mine, theirs = ours.metrics[metric], values[best_name]
        ci = [(m.low.get(metric, math.nan), m.high.get(metric, math.nan)) for m in (ours, best)]
        said = f"the predictor ({mine:.3f}) {{}} the best baseline, {best_name} ({theirs:.3f})"
        wins = mine > theirs if better is max else mine < theirs
        if any(math.isnan(x) for pair in ci for x in pair):
            word = "ties" if abs(mine - theirs) < 1e-9 else ("is ahead of" if wins else "is behind")
            lines.append(f"{metric}: {said.format(word)} on point estimates; without bootstrap intervals a "
                         "difference cannot be told from noise")
            continue
        (lo1, hi1), (lo2, hi2) = ci
        if abs(mine - theirs) < 1e-9:
            lines.append(f"{metric}: {said.format('ties')}")
        elif lo1 <= hi2 and lo2 <= hi1:
            lines.append(f"{metric}: {said.format('is not distinguishable from')}: their 95% intervals "
                         f"[{lo1:.2f}, {hi1:.2f}] and [{lo2:.2f}, {hi2:.2f}] overlap")
        else:
            lines.append(f"{metric}: {said.format('beats' if wins else 'does NOT beat')} (95% intervals do not overlap)")
    return lines
