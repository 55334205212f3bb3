"""Fit every ranking method on a labelled Dataset, choose one by leave-lineage-out and calibrate it.

What ``basepick fit`` does per recipe and target, and what ``evaluate`` repeats on the bases outside
each simulated pool (predictor.evals.calibration), so both see exactly the same procedure.
"""

from __future__ import annotations

import numpy as np

from predictor.data import dataset as DS
from predictor.models import methods as Mt
from predictor.models import metrics as M
from predictor.models import predictive as P
from predictor.models import uncertainty as U
from predictor.models.model import ModelConfig


def fit_chosen(ds: DS.Dataset, config: ModelConfig, *, seed: int = 0):
    """Fit every ranking method, choose one by leave-lineage-out (predictor.models.methods), calibrate it.

    One leave-lineage-out pass per method gives both its out-of-fold predictions and, for every
    pattern of missing inputs, its predictions with those inputs masked in the held-out rows. The
    chosen method's levels and the measured scores give its predictive distribution
    (predictor.models.predictive), stored with the data it was fitted from.
    """
    fitted = {name: Mt.fit(name, ds, config) for name in Mt.METHODS}
    groups = {name: U.input_groups(Mt.inputs(model)) for name, model in fitted.items()}
    masked = {name: lineage_out_masked(ds, name, config, groups[name]) for name in Mt.METHODS}  # (P, N) each
    choice = Mt.choose(ds, config, seed=seed, oof={name: pred[0] for name, pred in masked.items()})
    model = fitted[choice.name]
    pred = masked[choice.name]
    known = ~np.isnan(pred[0])  # rows a fold predicted (all, unless a lineage holds nearly every row)
    # the level rank sees: a rule ranks by its line fitted on all labels; a learned method, out of fold
    level = Mt.rule_order(choice.name, ds, config) if choice.name in Mt.RULES else pred[0]
    metrics = {**M.selection_metrics(level[known], ds.y[known], ds.bucket[known]), "mae": M.mae(pred[0, known], ds.y[known])}
    model.calibration_ = {
        "method": choice.name,
        "ids": [i for i, k in zip(ds.ids, known) if k],
        "level": [round(float(v), 4) for v in level[known]],  # the method's prediction as rank makes it, points
        "measured": [round(float(v), 4) for v in ds.y[known]],  # points
        "lineage": ds.lineage[known].tolist(),
        "predictive": P.fit(level[known], ds.y[known], ds.lineage[known]).to_json(),
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
