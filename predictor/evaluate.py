"""Out-of-fold evaluation of the predictor and the baselines, in the same folds.

Primary split: whole lineages held out (models of one lineage share data and publisher habits).
Secondary: release date (train on earlier releases, predict later ones). Random k-fold is shown only as
an optimistic reference. Everything the predictor learns — the ridge offset, the boosters, the
interval width — is fitted inside the training part of each fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from predictor import baselines as B
from predictor import data as D
from predictor import features as F
from predictor import metrics as M
from predictor.api import SPLITS
from predictor.candidates import with_features
from predictor.errors import DataError
from predictor.lineage import lineage_of
from predictor.model import ModelConfig, RewardPredictor, with_presence

MIN_TRAIN = 8  # models a fold must train on, else its test models are not predicted
MIN_PREDICTED = 5  # out-of-fold predictions (from 2 lineages) below which no metric means anything
PREDICTOR = "basepick (LightGBM)"
WITHOUT_PRESENCE = "basepick without presence_*"
# given to rank as columns, unused by the predictor: evaluated here with them, to show why (issue 13)
UNUSED_FEATURES = ("pretrain_tokens_t", "post_training")
WITH_UNUSED = "basepick + " + ", ".join(UNUSED_FEATURES)
HEADLINE = ("spearman", "kendall", "mae", "coverage@3", "coverage@5", "coverage@10", "regret@1/bucket", "best_of_3_regret/bucket", "regret@1/pooled")


@dataclass
class Dataset:
    ids: list[str]
    columns: dict[str, np.ndarray]  # feature → (N,)
    y: np.ndarray  # (N,) RewardBench points
    lineage: np.ndarray  # (N,) str
    bucket: np.ndarray  # (N,) str, size bucket
    release: np.ndarray  # (N,) str, YYYY-MM

    def take(self, mask: np.ndarray) -> "Dataset":
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        return Dataset(
            ids=[self.ids[i] for i in idx],
            columns={k: v[idx] for k, v in self.columns.items()},
            y=self.y[idx],
            lineage=self.lineage[idx],
            bucket=self.bucket[idx],
            release=self.release[idx],
        )


def dataset(labels: list[D.Label], snapshot: D.Snapshot, metadata: dict[str, dict], recipe: str, target: str) -> Dataset:
    """One recipe's labels for one target, joined with features, lineage and release date.

    A model the study's metadata does not know gets its lineage from its id (predictor.lineage: a
    family keyword of its name, else its organisation) and has no release date (it is never in a
    temporal test fold).
    """
    ids, columns, targets = D.join_labels(labels, snapshot, recipe)
    known = ~np.isnan(targets[target])
    ds = Dataset(
        ids=ids,
        columns=columns,
        y=targets[target],
        lineage=np.array([lineage_of(i, metadata)[0] for i in ids]),
        bucket=np.array([F.size_bucket(p) for p in columns["params_b"]]),
        release=np.array([metadata.get(i, {}).get("release", "") for i in ids]),
    )
    return ds.take(known)


def load_dataset(label_sources: list, recipe: str, target: str, feature_sources: list = (), *,
                 allow_partial: bool = False, note=lambda s: None) -> Dataset:
    labels = D.load_labels(label_sources)
    D.refuse_partial(labels, allow_partial)
    if recipe not in {l.recipe for l in labels}:
        raise DataError(f"no labels for recipe {recipe!r} (have: {', '.join(sorted({l.recipe for l in labels}))})")
    snapshot = with_features(D.load_snapshot(), list(feature_sources), note=note)
    return dataset(labels, snapshot, D.load_model_metadata(), recipe, target)


def folds(ds: Dataset, split: str, seed: int = 0) -> list[np.ndarray]:
    """Test masks. Lineage: one fold per lineage. Temporal: release-ordered quarters, each predicted
    from all earlier releases only (the earliest quarter is never a test set). Random: 5 folds."""
    if split == "lineage":
        return [ds.lineage == g for g in sorted(set(ds.lineage.tolist()))]
    if split == "temporal":
        months = sorted(set(ds.release.tolist()))
        chunks = np.array_split(np.array(months), 4)
        return [np.isin(ds.release, chunk) for chunk in chunks[1:]]
    if split == "random":
        order = np.random.default_rng(seed).permutation(len(ds.y))
        return [np.isin(np.arange(len(ds.y)), part) for part in np.array_split(order, 5)]
    raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def require_folds(ds: Dataset, split: str, what: str, seed: int = 0) -> None:
    """DataError unless ``split`` predicts at least MIN_PREDICTED models out of fold, from 2 lineages."""
    n, lineages = len(ds.y), sorted(set(ds.lineage.tolist()))
    if split == "lineage" and len(lineages) < 2:
        raise DataError(f"{what}: all {n} labelled models are of one lineage ({lineages[0] if lineages else 'none'}); "
                        "holding a lineage out needs labelled models of at least 2 lineages")
    predicted = np.zeros(n, dtype=bool)
    for test in folds(ds, split, seed):
        if train_mask(ds, test, split).sum() >= MIN_TRAIN:
            predicted |= test
    k, groups = int(predicted.sum()), len(set(ds.lineage[predicted].tolist()))
    if k < MIN_PREDICTED or groups < 2:
        raise DataError(f"{what}: the {split} split predicts only {k} of {n} labelled models out of fold, from {groups} "
                        f"lineage(s) (a fold needs {MIN_TRAIN} models to train on); at least {MIN_PREDICTED} from 2 "
                        "lineages are needed: add labels")


def train_mask(ds: Dataset, test: np.ndarray, split: str) -> np.ndarray:
    if split == "temporal":
        first = min(ds.release[test].tolist())  # YYYY-MM strings sort in time order
        return ds.release < first
    return ~test


def predictor_method(config: ModelConfig):
    def fit_predict(train: Dataset, test: Dataset) -> np.ndarray:
        return RewardPredictor(config).fit(train.columns, train.y).predict(test.columns)

    return fit_predict


def out_of_fold(ds: Dataset, fit_predict, split: str, seed: int = 0) -> np.ndarray:
    """(N,) out-of-fold predictions (NaN for rows no fold predicts, e.g. the earliest releases)."""
    pred = np.full(len(ds.y), np.nan)
    for test in folds(ds, split, seed):
        train = train_mask(ds, test, split)
        if train.sum() < MIN_TRAIN or not test.any():
            continue
        pred[test] = fit_predict(ds.take(train), ds.take(test))
    return pred


def lineage_residuals(ds: Dataset, config: ModelConfig) -> np.ndarray:
    """(N,) leave-one-lineage-out residuals (measured − predicted), the interval calibration set."""
    return ds.y - out_of_fold(ds, predictor_method(config), "lineage")


def nested_intervals(ds: Dataset, config: ModelConfig, split: str, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold intervals whose width comes from inner lineage-out residuals of the training part only."""
    low = np.full(len(ds.y), np.nan)
    high = np.full(len(ds.y), np.nan)
    for test in folds(ds, split):
        train = train_mask(ds, test, split)
        if train.sum() < MIN_TRAIN or not test.any():
            continue
        inner = ds.take(train)
        half = M.interval_halfwidth(lineage_residuals(inner, config), level)
        pred = RewardPredictor(config).fit(inner.columns, inner.y).predict(ds.take(test).columns)
        low[test], high[test] = pred - half, pred + half
    return low, high


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
    interval_coverage: float
    interval_low: np.ndarray = field(repr=False)  # (N,) out-of-fold interval, points
    interval_high: np.ndarray = field(repr=False)
    verdict: list[str] = field(default_factory=list)  # plain sentences: does the predictor beat the baselines?
    chosen_method: str | None = None  # what `fit` would rank with (predictor.methods.choose), with --budget
    budget: object | None = field(default=None, repr=False)  # budget.BudgetResult, with --budget

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
            "interval": {"level": self.interval_level, "empirical_coverage": round(self.interval_coverage, 4)},
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
    note=lambda s: None,
    budget: int | None = None,
    pool_size: int = 12,
    n_pools: int = 40,
) -> Evaluation:
    """Evaluate the predictor (and baselines) out of fold; metrics with lineage-bootstrap intervals.

    When feature files give presence_* columns for labelled models, the predictor is evaluated with
    them (first row) and without them (second row); with baselines, also with pretrain_tokens_t and
    post_training, which it does not use. ``budget``: also simulate the budgeted decision
    (predictor.budget) and name the ranking method ``fit`` would choose.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    base_config = config or ModelConfig()
    ds = load_dataset(label_sources, recipe, target, feature_sources, allow_partial=allow_partial, note=note)
    require_folds(ds, split, "evaluate", seed)
    if budget is not None:
        from predictor import budget as BU  # budget imports this module

        BU.check_sizes(len(ds.y), budget, pool_size)  # before the slow part
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
    lo, hi = nested_intervals(ds, config, split, level)
    known = ~np.isnan(lo)
    coverage = M.interval_coverage(lo[known], hi[known], ds.y[known]) if known.any() else math.nan
    ev = Evaluation(
        recipe=recipe, target=target, split=split, n=int(covered.sum()), ids=ds.ids, truth=ds.y,
        lineage=ds.lineage, methods=results, interval_level=level, interval_coverage=coverage,
        interval_low=lo, interval_high=hi, verdict=verdict(results),
    )
    if budget is not None:
        from predictor import methods as Mt  # methods imports this module

        learned = (Mt.PREDICTOR, Mt.RIDGE)  # the same leave-lineage-out predictions as above: not refitted
        oof = {m.name: m.predictions for m in results if m.name in learned} if split == "lineage" else {}
        ev.chosen_method = Mt.choose(ds, base_config, seed=seed, oof=oof).name
        ev.budget = BU.simulate(ds, budget=budget, pool_size=pool_size, n_pools=n_pools, n_boot=n_boot, seed=seed,
                                config=base_config)
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
