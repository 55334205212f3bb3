"""Fit a predictor bundle from label files: one model per (recipe, target) present in the labels."""

from __future__ import annotations

import platform
from dataclasses import asdict, replace
from typing import Callable

import lightgbm as lgb
import numpy as np

from predictor import __version__
from predictor.data import dataset as DS
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.data.candidates import with_features
from predictor.data.tables import read_table
from predictor.models import methods as Mt
from predictor.models import metrics as M
from predictor.models import uncertainty as U
from predictor.models.artifact import Bundle
from predictor.models.model import ModelConfig

# Bump when a change to fitting makes the same inputs give a different artifact: it enters the
# content version (predictor.models.artifact.content_version), which hashes inputs, never fitted numbers.
FIT_FORMAT = 1


def fit_bundle(
    label_sources: list, *, feature_sources: list = (), config: ModelConfig | None = None, seed: int = 0,
    allow_partial: bool = False, on_duplicate: str = "error", note: Callable[[str], None] = lambda s: None,
) -> Bundle:
    """Fit every (recipe, target) in the labels; return the bundle with its provenance metadata.

    ``label_sources`` and ``feature_sources`` are CSV paths or lists of dicts. Feature tables (e.g.
    presence_* from ``basepick probe``) are merged over the snapshot; presence columns known for any
    labelled model become features. Labels are read by ``labels.read_labels``: partial runs refused unless
    ``allow_partial``, a base labelled twice refused unless ``on_duplicate`` is mean or last.
    """
    config = replace(config or ModelConfig(), seed=seed)
    labels = LB.read_labels(label_sources, allow_partial=allow_partial, on_duplicate=on_duplicate, note=note)
    snapshot = with_features(D.load_snapshot(), list(feature_sources), note=note)
    metadata_of = D.load_model_metadata()
    recipes = sorted({l.recipe for l in labels})
    for recipe in recipes:  # every join and every calibration split is checked before any model is fitted
        DS.require_folds(DS.dataset(labels, snapshot, metadata_of, recipe, "score"), "lineage", f"fit ({recipe})")
    models = {}
    labelled = {}
    for recipe in recipes:
        for target in LB.TARGETS:
            ds = DS.dataset(labels, snapshot, metadata_of, recipe, target)
            models[(recipe, target)] = fit_chosen(ds, config, seed=seed)
            if target == "score":
                params = ds.columns["params_b"]
                labelled[recipe] = {"models": ds.ids, "params_b_range": [float(np.nanmin(params)), float(np.nanmax(params))]}
    bench = D.benchmarks_dir()
    metadata = {
        "basepick_version": __version__,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "lightgbm": lgb.__version__},
        "seed": seed,
        "fit": {"format": FIT_FORMAT, "config": asdict(config), "methods": list(Mt.METHODS), "criterion": Mt.CRITERION},
        "data": {
            "labels": [_provenance(s) for s in label_sources],
            **({"features": [_provenance(s) for s in feature_sources]} if feature_sources else {}),
            "snapshot": {name: D.sha256(bench / name) for name in (D.V2_FILE, D.V1_FILE, D.MODELS_FILE)},
        },
        "labelled": labelled,
    }
    return Bundle(models=models, metadata=metadata)


def _provenance(source) -> dict:
    table = read_table(source)
    return {"file": table.label, "sha256": table.sha256}


def fit_chosen(ds: DS.Dataset, config: ModelConfig, *, seed: int = 0):
    """Fit every ranking method, choose one by leave-lineage-out (predictor.models.methods), calibrate it.

    One leave-lineage-out pass per method gives both its out-of-fold predictions and, for every
    pattern of missing inputs, its predictions with those inputs masked in the held-out rows.
    """
    fitted = {name: Mt.fit(name, ds, config) for name in Mt.METHODS}
    groups = {name: U.input_groups(Mt.inputs(model)) for name, model in fitted.items()}
    masked = {name: lineage_out_masked(ds, name, config, groups[name]) for name in Mt.METHODS}  # (P, N) each
    choice = Mt.choose(ds, config, seed=seed, oof={name: pred[0] for name, pred in masked.items()})
    model = fitted[choice.name]
    pred = masked[choice.name]
    known = ~np.isnan(pred[0])  # rows a fold predicted (all, unless a lineage holds nearly every row)
    residuals = ds.y[known] - pred[0, known]
    order = Mt.rule_order(choice.name, ds, config) if choice.name in Mt.RULES else pred[0]  # a rule: its own order
    metrics = {**M.selection_metrics(order[known], ds.y[known], ds.bucket[known]), "mae": M.mae(pred[0, known], ds.y[known])}
    model.calibration_ = {
        "method": choice.name,
        "ids": [i for i, k in zip(ds.ids, known) if k],
        "residuals": [round(float(r), 4) for r in residuals],  # measured − predicted, points
        "residual_sd": round(U.residual_sd(residuals), 4),
        "lineage_correlation": round(U.lineage_correlation(residuals, ds.lineage[known]), 4),
        "missing": {"groups": groups[choice.name], "ratios": U.masked_ratios(ds.y[known], pred[:, known])},
        "lineage_cv": {k: round(metrics[k], 4) for k in ("spearman", "kendall", "mae", "coverage@5", "regret@1/bucket")},
        # the no-fit rule every method must beat: rank by mean leaderboard v2 score
        "mean_score_spearman": round(M.spearman(ds.columns["mean_v2"], ds.y), 4),
        "choice": {"criterion": Mt.CRITERION, "methods": choice.figures},
    }
    return model


def lineage_out_masked(ds: DS.Dataset, name: str, config: ModelConfig, groups: list[list[str]]) -> np.ndarray:
    """(2**len(groups), N) leave-one-lineage-out predictions of ``name``; row p masks the groups of pattern p."""
    n_patterns = 2 ** len(groups)
    out = np.full((n_patterns, len(ds.y)), np.nan)
    for test in DS.folds(ds, "lineage"):
        if (~test).sum() < DS.MIN_TRAIN:
            continue  # as evaluate.out_of_fold: too few rows left to fit on
        rows = np.flatnonzero(test)
        model = Mt.fit(name, ds.take(~test), config)
        out[:, rows] = model.predict(U.masked(ds.take(rows).columns, groups)).reshape(n_patterns, len(rows))
    return out
