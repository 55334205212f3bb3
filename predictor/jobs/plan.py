"""`basepick plan`: which bases of a pool to train next, given the labels measured so far.

Top to bottom: read the candidates and their lineages (predictor.data.lineage), read the measured labels
(``train --labels-out`` rows), predict every candidate with the artifact's chosen ranking method,
build the predictive distribution stored at fit time — the one ``rank`` shows (predictor.models.predictive:
recalibrated mean, two-piece t error widened for missing inputs, lineage correlation) — condition it on
the measured labels (predictor.models.bayes), and choose the next ``budget`` runs (expected improvement;
a batch goes out in parallel, so it is chosen by greedy batch expected improvement). ``runs_jsonl`` writes one
``basepick train`` command per proposal for a scheduler (examples/slurm/).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictor.data import candidates as C
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.data.atomic import write_text
from predictor.data.lineage import lineage_of
from predictor.data.tables import Table, read_table
from predictor.errors import ArtifactError, DataError
from predictor.models import bayes as Y
from predictor.models import predictive as P
from predictor.models.artifact import Bundle
from predictor.models.methods import method_name
from predictor.models.uncertainty import widening

CRITERION = {
    1: "expected improvement over the best measured score (nothing measured: the highest predicted score)",
    2: "greedy batch expected improvement: each run adds the most to the expected best of the batch",
}
LINEAGE_COLUMN = "lineage"


@dataclass
class Proposal:
    model_id: str
    lineage: str
    lineage_source: str  # given | metadata | inferred | organisation (predictor.data.lineage)
    prior: float  # the prediction rank shows (the predictive mean before any label), points
    predicted: float  # posterior mean given the measured labels, points
    sd: float  # posterior standard deviation, points
    p_best: float  # P(this base is the pool's best)
    expected_improvement: float  # points the batch's expected best gains from it; NaN: nothing to improve on

    def to_json(self) -> dict:
        return {"model_id": self.model_id, "predicted": round(self.predicted, 2), "p_best": round(self.p_best, 3),
                "expected_improvement": None if math.isnan(self.expected_improvement) else round(self.expected_improvement, 3),
                "sd": round(self.sd, 2), "prior": round(self.prior, 2), "lineage": self.lineage,
                "lineage_source": self.lineage_source}


@dataclass
class Plan:
    recipe: str
    method: str
    budget: int
    residual_sd: float  # points: sd of the predictive error of a full-input candidate (predictor.models.predictive)
    lineage_correlation: float  # within-lineage correlation of that error
    confidence: float
    pool_size: int
    proposals: list[Proposal]
    measured: dict[str, float]  # model id → measured score, points
    p_within_1pt: float  # P(best measured within 1 point of the pool's best), now
    p_within_1pt_after: float  # the same once the proposals are measured too
    notes: list[str] = field(default_factory=list)  # for stderr

    @property
    def stop(self) -> bool:
        return self.p_within_1pt >= self.confidence

    @property
    def criterion(self) -> str:
        return CRITERION[min(self.budget, 2)]

    def to_json(self) -> dict:
        best = max(self.measured.items(), key=lambda kv: kv[1]) if self.measured else None
        return {
            "schema_version": 1, "recipe": self.recipe, "target": "score", "method": self.method, "budget": self.budget,
            "criterion": self.criterion, "residual_sd": round(self.residual_sd, 3),
            "lineage_correlation": round(self.lineage_correlation, 3),
            "proposals": [p.to_json() for p in self.proposals],
            "pool": {"size": self.pool_size, "measured": len(self.measured),
                     "best_measured": None if best is None else {"model_id": best[0], "score": best[1]},
                     "p_within_1pt": round(self.p_within_1pt, 3),
                     "p_within_1pt_after": round(self.p_within_1pt_after, 3),
                     "confidence": self.confidence, "stop": self.stop},
        }


def plan(
    source,
    bundle: Bundle,
    snapshot: D.Snapshot,
    *,
    budget: int,
    recipe: str = "regression",
    label_sources: list = (),
    confidence: float = 0.9,
    allow_partial: bool = False,
    on_duplicate: str = "error",
    scale: str = "auto",
    seed: int = 0,
    note=lambda s: None,
) -> Plan:
    """Propose the next ``budget`` runs for the candidates in ``source`` (a CSV path or a list of dicts; see
    the module doc); ``label_sources``: measured labels, CSV paths or lists of dicts."""
    candidates = read_table(source)
    table = C.read_candidates(candidates, snapshot, scale=scale, note=note, read_elsewhere=(LINEAGE_COLUMN,))
    n = len(table)
    if n < 2:
        raise DataError(f"{candidates.name}: a pool of one candidate leaves nothing to choose; list at least two")
    measured = read_measured(label_sources, table.ids, recipe, allow_partial, on_duplicate, note)
    left = n - len(measured)
    if left == 0:
        raise DataError(f"all {n} candidates are measured already: there is nothing left to propose (the best "
                        f"measured is {max(measured, key=measured.get)}, {max(measured.values()):.2f} points)")
    if budget > left:
        raise DataError(f"--budget {budget}: only {left} of the {n} candidates are not measured yet; "
                        f"ask for 1 to {left} run(s)")
    metadata = D.load_model_metadata()
    given = _lineage_column(candidates)
    lineages = [lineage_of(i, metadata, g) for i, g in zip(table.ids, given)]
    model = bundle.get(recipe, "score")
    cal = model.calibration_ or {}
    if "predictive" not in cal:
        raise ArtifactError("this predictor stores no predictive distribution; refit it with `basepick fit`")
    calibration = P.Calibration.from_json(cal["predictive"])
    wider = widening(cal, table.columns, table.ids)  # (N,) >= 1 for missing inputs
    _, group = np.unique([g for g, _ in lineages], return_inverse=True)
    values = np.array([measured.get(i, np.nan) for i in table.ids])
    raw = np.clip(model.predict(table.columns), 0.0, 100.0)  # (N,) points
    belief = Y.Belief(P.predictive(calibration, raw, wider, group), values)

    rng = np.random.default_rng(seed)
    draws = belief.draws(Y.N_DRAWS, rng)  # (D, N) shared by the batch choice and the odds
    batch = Y.choose_batch(belief, budget, rng, draws)
    p_best, within, within_after = Y.odds(belief, [i for i, _ in batch], draws)
    mean, post_sd = belief.posterior()
    proposals = [Proposal(table.ids[i], *lineages[i], float(belief.dist.mean[i]), float(mean[i]), float(post_sd[i]),
                          float(p_best[i]), gain) for i, gain in batch]
    return Plan(recipe, method_name(model), budget, calibration.error.sd(), calibration.error.rho, confidence, n,
                proposals, measured, within, within_after,
                notes=_notes(table.ids, lineages, bundle, recipe, belief.dist.scale, calibration))


def read_measured(sources: list, ids: list[str], recipe: str, allow_partial: bool, on_duplicate: str = "error",
                  note=lambda s: None) -> dict[str, float]:
    """Measured overall scores by candidate id, from label tables (``train --labels-out`` rows), read by
    ``labels.read_labels``: each base once, ids matched without case."""
    if not sources:
        return {}
    known = {i.casefold(): i for i in ids}
    out: dict[str, float] = {}
    for label in LB.read_labels(list(sources), allow_partial=allow_partial, on_duplicate=on_duplicate, note=note):
        if label.recipe != recipe:
            raise DataError(f"{label.source}: a {label.recipe} label, but this plan is for the {recipe} recipe; "
                            "pass --recipe or only that recipe's labels")
        if label.model_id.casefold() not in known:
            raise DataError(f"{label.source}: {label.model_id!r} is not among the candidates; add it to the "
                            "candidates file or drop the label")
        out[known[label.model_id.casefold()]] = label.values["score"]
    return out


def _lineage_column(table: Table) -> list[str]:
    if LINEAGE_COLUMN not in table.header:
        return [""] * len(table.rows)
    j = table.header.index(LINEAGE_COLUMN)
    return [row[j] for row in table.rows]


def _notes(ids, lineages, bundle: Bundle, recipe: str, scale: np.ndarray, calibration: P.Calibration) -> list[str]:
    notes = []
    guessed = [f"{i} → {g}" for i, (g, src) in zip(ids, lineages) if src not in ("given", "metadata")]
    if guessed:
        notes.append(f"lineage from the model id (a family keyword, else the organisation) for {len(guessed)} "
                     f"candidate(s): {'; '.join(guessed[:6])}{' …' if len(guessed) > 6 else ''}; a 'lineage' column overrides it")
    labelled = set(bundle.metadata.get("labelled", {}).get(recipe, {}).get("models", []))
    if (seen := [i for i in ids if i in labelled]):
        notes.append(f"{len(seen)} candidate(s) were labelled when the predictor was fitted (e.g. {seen[0]}): "
                     "pass their labels with --labels to count them as measured")
    if (wide := int((scale > 1 + 1e-9).sum())):
        notes.append(f"{wide} candidate(s) lack inputs the ranking method uses or lie beyond the labelled predictions: "
                     f"their uncertainty is widened (up to x{scale.max():.2f}) by the lineage-out error with those inputs "
                     "masked and by the uncertainty of the calibration itself")
    if calibration.no_skill:
        notes.append(f"on the labelled bases the ranking method's slope is {calibration.skill_z:.1f} standard errors from "
                     "zero, under 2: the beliefs are shrunk towards the mean and measuring is what separates the candidates")
    return notes


def runs_jsonl(result: Plan) -> str:
    """One JSON line per proposal with a ``basepick train`` command; paths come from the environment
    (MODELS_DIR, TRAIN_DATA, EVAL_DATA, REWARDBENCH, RUNS_DIR, LABELS_DIR) when the command runs, and
    each run appends its label to a file of its own, so runs in parallel never write the same file."""
    lines = []
    for p in result.proposals:
        name = p.model_id.replace("/", "--")
        command = " ".join([
            "basepick train", '"${MODELS_DIR:-models}"/' + shlex.quote(p.model_id), "--recipe", result.recipe,
            "--lr-sweep",  # the study's label is the best of its learning-rate grid, not one learning rate
            '--data "${TRAIN_DATA:?set TRAIN_DATA}" --eval-data "${EVAL_DATA:?set EVAL_DATA}"',
            '--rewardbench "${REWARDBENCH:?set REWARDBENCH}"', '--out "${RUNS_DIR:-runs}"/' + shlex.quote(name),
            "--model-id", shlex.quote(p.model_id), '--labels-out "${LABELS_DIR:-labels}"/' + shlex.quote(name + ".csv"),
        ])
        lines.append(json.dumps({"schema_version": 1, "model_id": p.model_id, "recipe": result.recipe,
                                 "lineage": p.lineage, "predicted": round(p.predicted, 2), "run_name": name,
                                 "command": command}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def write_runs(result: Plan, path: str | Path) -> None:
    try:
        write_text(path, runs_jsonl(result))
    except OSError as exc:
        raise DataError(f"{path}: cannot write the runs file ({exc.strerror or exc})") from None
