"""``basepick validate``: the current predictor's predictions for trained bases against their measured labels.

numpy + predictor only (no jax): it runs wherever ``basepick rank`` runs. For every label row whose base is
known to the shipped snapshot or to a ``--features`` file (a base outside the leaderboard: its scores from
``basepick ingest``), the predictor (shipped or ``--predictor DIR``) predicts each RewardBench target it has
a model for; per row the report gives predicted vs measured points, the error and the rank of the base
among the file's bases of the same recipe, under the predicted and the measured order. With at least 3
rows in a recipe it adds MAE and Spearman's rho of the overall score.

A row whose base and recipe the predictor was fitted on (its metadata's ``labelled`` models) is
in-sample: its error says how well the predictor fits, not how well it predicts, and the report says so.
Each row also says (``caveats``) what makes its comparison weaker: a base outside the sizes the predictor
was fitted on (an extrapolation), a label trained on other data than the study's recipe (another scale),
and a label from one learning rate (``lrs_tried`` = 1, written by ``train`` without ``--lr-sweep``: the
study's labels are the best of the recipe's grid, so a single-rate label tends to sit below them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from predictor.models.metrics import spearman

SCHEMA_VERSION = 1
MIN_ROWS_FOR_METRICS = 3
STUDY_TRAIN_DATA = {"regression": "helpsteer2", "bradley_terry": "helpsteer2-preference"}  # the shipped labels'


@dataclass(frozen=True)
class ValidationRow:
    model_id: str  # Hugging Face id of the base
    recipe: str  # regression | bradley_terry
    train_data: str  # label key: training data name
    eval: str  # label key: evaluation, e.g. rewardbench-v1
    predicted: dict[str, float]  # target -> predicted RewardBench points (0-100)
    measured: dict[str, float]  # target -> measured points (NaN when the label lacks it)
    error: float  # predicted - measured overall score, points
    predicted_rank: int  # 1 = best among this file's bases of the recipe, by predicted score
    measured_rank: int  # same by measured score
    rank_change: int  # measured_rank - predicted_rank (> 0: the base did worse than predicted)
    in_sample: bool  # the predictor was fitted on this base's label for this recipe: an optimistic error
    caveats: tuple[str, ...] = ()  # what weakens this comparison (outside the labelled sizes, other data, one LR)


@dataclass(frozen=True)
class RecipeSummary:
    recipe: str  # the recipe these rows were trained with
    n: int  # rows compared
    mae: float | None  # mean |error| of the overall score, points (None below 3 rows)
    spearman: float | None  # rank correlation predicted vs measured overall score (None below 3 rows)
    mae_by_target: dict[str, float] = field(default_factory=dict)  # target -> MAE over rows that have it
    n_in_sample: int = 0  # rows whose label the predictor was fitted on


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[ValidationRow, ...]  # compared rows, grouped by recipe, in measured-rank order
    summaries: tuple[RecipeSummary, ...]  # one per recipe
    skipped: tuple[str, ...]  # "model_id (recipe): why" for rows that could not be predicted
    predictor: str  # artifact directory used

    def to_json(self) -> dict:
        def clean(value):
            if isinstance(value, float):
                return None if math.isnan(value) else round(value, 4)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return {"schema_version": SCHEMA_VERSION, "predictor": self.predictor,
                "rows": [clean(asdict(r)) for r in self.rows], "summaries": [clean(asdict(s)) for s in self.summaries],
                "skipped": list(self.skipped)}


def _competition_rank(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest; ties share the best rank."""
    return np.array([1 + int(np.sum(values > v)) for v in values], dtype=int)


def _caveats(label, params_b: float, size_range) -> tuple[str, ...]:
    out = []
    low, high = size_range
    if not math.isnan(params_b + low + high) and not low <= params_b <= high:  # an unknown size is not flagged
        out.append(f"{params_b:g}B is outside the labelled sizes {low:g}-{high:g}B: the prediction extrapolates")
    study = STUDY_TRAIN_DATA.get(label.recipe)
    if study is not None and label.train_data != study:
        out.append(f"trained on {label.train_data}, not the study's {study}: a label of another recipe's scale")
    if label.lrs_tried == 1:
        out.append("one learning rate (lrs_tried=1): the study's labels are the best of the recipe's grid")
    return tuple(out)


def validate(labels_path: str | Path, predictor_dir: str | Path | None = None, feature_paths=(),
             on_duplicate: str = "error", note=lambda s: None) -> ValidationReport:
    """Compare predictions with the measured labels in ``labels_path`` (see the module docstring)."""
    from predictor.models import artifact
    from predictor.data.candidates import fill_from_snapshot, with_features
    from predictor.data.labels import TARGETS, read_labels
    from predictor.data.shipped import load_snapshot, shipped_predictor_dir
    from predictor.errors import DataError

    labels = read_labels([Path(labels_path)], allow_partial=True, on_duplicate=on_duplicate, note=note)
    source = Path(predictor_dir) if predictor_dir is not None else shipped_predictor_dir()
    bundle = artifact.load(source)
    snapshot = with_features(load_snapshot(), [Path(p) for p in feature_paths], note=note)
    available = set(bundle.keys())
    fitted_on = {recipe: set(entry.get("models", [])) for recipe, entry in bundle.metadata.get("labelled", {}).items()}
    if "labelled" not in bundle.metadata:
        note(f"{source} does not record the bases it was fitted on: rows cannot be marked in-sample; refit it")
    if (partial := [lab for lab in labels if lab.partial]):
        note(f"{len(partial)} label(s) come from an incomplete RewardBench run (eval marks them partial), "
             f"e.g. {partial[0].model_id}: their measured scores are less reliable")
    skipped, by_recipe = [], {}
    for label in labels:
        if (label.recipe, "score") not in available:
            skipped.append(f"{label.model_id} ({label.recipe}): the predictor has no {label.recipe} model")
        elif (found := snapshot.find(label.model_id)) is None:
            skipped.append(f"{label.model_id} ({label.recipe}): not in the shipped benchmark snapshot; give its "
                           "scores with --features")
        else:
            by_recipe.setdefault(label.recipe, []).append(replace(label, model_id=found))
    if not by_recipe:
        raise DataError(f"{labels_path}: no label row can be predicted ({'; '.join(skipped)})")

    rows, summaries = [], []
    for recipe, group in sorted(by_recipe.items()):
        candidates = fill_from_snapshot([lab.model_id for lab in group], {}, snapshot)
        targets = [t for t in TARGETS if (recipe, t) in available]
        predicted = {t: np.clip(bundle.get(recipe, t).predict(candidates.columns), 0.0, 100.0) for t in targets}
        measured = {t: np.array([lab.values[t] for lab in group]) for t in targets}  # (N,) points each
        p_rank, m_rank = _competition_rank(predicted["score"]), _competition_rank(measured["score"])
        error = predicted["score"] - measured["score"]  # (N,) points
        size_range = bundle.metadata.get("labelled", {}).get(recipe, {}).get("params_b_range", [math.nan, math.nan])
        params = candidates.columns.get("params_b", np.full(len(group), math.nan))  # (N,) billions
        for i in np.argsort(m_rank, kind="stable"):
            lab = group[i]
            rows.append(ValidationRow(
                lab.model_id, recipe, lab.train_data, lab.eval,
                {t: float(predicted[t][i]) for t in targets}, {t: float(measured[t][i]) for t in targets},
                float(error[i]), int(p_rank[i]), int(m_rank[i]), int(m_rank[i] - p_rank[i]),
                lab.model_id in fitted_on.get(recipe, ()),
                _caveats(lab, float(params[i]), size_range)))
        enough = len(group) >= MIN_ROWS_FOR_METRICS
        by_target = {}
        for t in targets:
            ok = ~np.isnan(measured[t])
            if ok.any():
                by_target[t] = float(np.mean(np.abs(predicted[t][ok] - measured[t][ok])))
        summaries.append(RecipeSummary(recipe, len(group), float(np.mean(np.abs(error))) if enough else None,
                                       spearman(predicted["score"], measured["score"]) if enough else None,
                                       by_target, sum(lab.model_id in fitted_on.get(recipe, ()) for lab in group)))
    for kind, word in (("outside the labelled sizes", "outside the labelled sizes"),
                       ("not the study's", "trained on other data than the study's recipe"),
                       ("one learning rate", "from one learning rate (the study's: best of the grid)")):
        if (n := sum(any(kind in c for c in r.caveats) for r in rows)):
            note(f"{n} label(s) {word}: see each row's caveats")
    return ValidationReport(tuple(rows), tuple(summaries), tuple(skipped), str(source))


def render_table(report: ValidationReport) -> str:
    """Plain-text table of a report (the CLI's ``--format table``)."""
    lines = []
    for summary in report.summaries:
        lines.append(f"recipe {summary.recipe}: {summary.n} bases")
        lines.append(f"  {'model_id':<44} {'predicted':>9} {'measured':>9} {'error':>7} {'rank p/m':>9} {'change':>6}")
        for r in (r for r in report.rows if r.recipe == summary.recipe):
            ranks = f"{r.predicted_rank}/{r.measured_rank}"
            lines.append(f"  {r.model_id:<44} {r.predicted['score']:>9.2f} {r.measured['score']:>9.2f} "
                         f"{r.error:>+7.2f} {ranks:>9} {r.rank_change:>+6d}" + ("  in-sample" if r.in_sample else ""))
            lines += [f"      ! {caveat}" for caveat in r.caveats]
        if summary.n_in_sample:
            lines.append(f"  {summary.n_in_sample} of {summary.n} bases were used to fit this predictor (in-sample): "
                         "their errors show how well it fits, not how well it predicts")
        if summary.mae is None:
            lines.append(f"  MAE / Spearman need at least {MIN_ROWS_FOR_METRICS} bases")
        else:
            rho = "n/a" if summary.spearman is None or math.isnan(summary.spearman) else f"{summary.spearman:.3f}"
            lines.append(f"  MAE {summary.mae:.2f} points, Spearman {rho}")
    return "\n".join(lines)
