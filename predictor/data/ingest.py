"""lm-evaluation-harness results → basepick's canonical features, normalised like the Open LLM Leaderboard,
with how each row was run (``lm_eval_*`` columns) and a check of those settings against the leaderboard's.

Reading the results files and merging one model's runs: ``predictor.data.harness``. The leaderboard's
settings and the comparison: ``predictor.data.harness_settings``. Nothing is dropped silently: a task
that lacks the metric a benchmark needs is a note naming both (the benchmark stays missing); a setting
that differs from the leaderboard's is a note naming it and its likely effect; ``strict`` makes both
errors. ``--out`` must be new or a feature table (the kind ingest writes): never a label file.

Where each rule comes from:

* v2 normalisation — https://huggingface.co/docs/leaderboards/open_llm_leaderboard/normalization:
  ``normalised = max(raw - lower, 0) / (1 - lower) * 100`` with ``lower`` = 1/num_choices, the random
  baseline; a raw score below it is 0. Tasks with subtasks (BBH, MuSR) normalise each subtask and take
  the plain mean. Per-subtask choices are the table of that page's notebook and of the leaderboard's
  About page (BBH: 24 multiple-choice subtasks; MuSR: murder mysteries 2, object placements 5, team
  allocation 3); GPQA 4 choices (lower 0.25) and MMLU-Pro 10 (lower 0.1) on the group score; IFEval =
  mean of ``prompt_level_strict_acc`` and ``inst_level_strict_acc`` × 100; MATH Lvl 5 =
  ``leaderboard_math_hard`` ``exact_match`` × 100 (no baseline). Leaderboard discussion #825 restates
  the subtask rule. Checked against the shipped snapshot: the raw → normalised rule reproduces every
  row's GPQA, MMLU-Pro, MATH and IFEval score to 1e-9, and the published details of
  EleutherAI/pythia-1b (2025-01-27) reproduce its BBH (2.2940) and MuSR (2.7344) exactly
  (tests/test_ingest.py).
* Task names and group sizes — lm_eval/tasks/leaderboard/README.md and the group YAMLs
  (``leaderboard_gpqa`` and ``leaderboard_math_hard`` aggregate their subtasks weighted by size; when a
  file lacks the group row basepick recomputes it from ``n-samples``).
* MATH caveat — https://huggingface.co/blog/math_verify_leaderboard (2025-02-14): the leaderboard
  re-scored MATH Lvl 5 of every model with Math-Verify, so the final export's MATH is on average ~4.7
  points above the older harness's ``exact_match``; lm-eval >= 0.4.9 (task version 3.0) scores with
  Math-Verify itself and also reports the old ``exact_match_original``. basepick uses ``exact_match``
  and says on stderr when it is the older scoring (``harness_settings.math_caveat``).
* v1 tasks — the leaderboard v1 About text (https://huggingface.co/docs/leaderboards/open_llm_leaderboard/archive):
  ARC 25-shot ``acc_norm``, HellaSwag 10-shot ``acc_norm``, TruthfulQA 0-shot mc2, MMLU 5-shot "average
  of all the results acc" (the plain mean of the 57 subjects; the harness's ``mmlu`` group is weighted
  by size, used only when the subjects are absent), Winogrande 5-shot ``acc``, GSM8K 5-shot ``acc``,
  i.e. the harness's ``exact_match`` after the ``#### answer`` regex (filter ``strict-match``, formerly
  ``get-answer``; lm_eval/tasks/gsm8k/gsm8k.yaml). v1 scores are plain accuracies × 100.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from predictor.data import features as F
from predictor.data import harness as H
from predictor.data import harness_settings as HS
from predictor.data import scale as S
from predictor.data.atomic import write_text
from predictor.data.tables import Table, read_table
from predictor.errors import DataError

BBH_CHOICES = {
    "boolean_expressions": 2, "causal_judgement": 2, "date_understanding": 6, "disambiguation_qa": 3,
    "formal_fallacies": 2, "geometric_shapes": 11, "hyperbaton": 2, "logical_deduction_five_objects": 5,
    "logical_deduction_seven_objects": 7, "logical_deduction_three_objects": 3, "movie_recommendation": 6,
    "navigate": 2, "object_counting": 19, "penguins_in_a_table": 5, "reasoning_about_colored_objects": 18,
    "ruin_names": 6, "salient_translation_error_detection": 6, "snarks": 2, "sports_understanding": 2,
    "temporal_sequences": 4, "tracking_shuffled_objects_five_objects": 5,
    "tracking_shuffled_objects_seven_objects": 7, "tracking_shuffled_objects_three_objects": 3,
    "web_of_lies": 2,
}
MUSR_CHOICES = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}
GPQA_SUBTASKS = ("diamond", "extended", "main")
MATH_SUBTASKS = ("algebra", "counting_and_prob", "geometry", "intermediate_algebra", "num_theory", "prealgebra", "precalculus")
# Random-guess lower bound of the tasks normalised on their aggregate score (raw fraction, 0-1).
LOWER_BOUND = {"ifeval": 0.0, "math_lvl5": 0.0, "gpqa": 0.25, "mmlu_pro": 0.1}
# v1: canonical name → (harness task, metric keys tried in order); shots: harness_settings.V1_SHOTS
V1_TASKS = {
    "arc": ("arc_challenge", ("acc_norm,none",)),
    "hellaswag": ("hellaswag", ("acc_norm,none",)),
    "mmlu": ("mmlu", ("acc,none",)),
    "truthfulqa": ("truthfulqa_mc2", ("acc,none",)),
    "winogrande": ("winogrande", ("acc,none",)),
    "gsm8k": ("gsm8k", ("exact_match,strict-match", "exact_match,get-answer")),
}
_MMLU_CATEGORIES = {"mmlu_humanities", "mmlu_stem", "mmlu_social_sciences", "mmlu_other"}
FEATURE_COLUMNS = F.V2_SCORES + F.V1_SCORES
_CONTROL = H._CONTROL


def normalise(raw: float, lower: float) -> float:
    """Leaderboard v2 normalisation of one raw fraction → points 0-100 (below chance → 0)."""
    return max(raw - lower, 0.0) / (1.0 - lower) * 100.0


@dataclass(frozen=True)
class ModelScores:
    """One model's features from its lm-eval results, and how they were made."""

    model_id: str
    scores: dict[str, float]  # canonical feature → points 0-100
    files: list[Path]  # the results files read for it
    notes: list[str] = field(default_factory=list)  # caveats for stderr (never errors)
    differences: list[str] = field(default_factory=list)  # settings unlike the leaderboard's, lost metrics (strict: errors)
    settings: dict[str, str] = field(default_factory=dict)  # the lm_eval_* provenance columns of its row


def read_results(path: str | Path, *, model_id: str | None = None) -> list[ModelScores]:
    """Read every results file under ``path`` → one ModelScores per model (files of a model merged)."""
    out = []
    for res in H.read_models(path, model_id=model_id):
        scores, lost = scores_from_results(res)
        if not scores:
            why = f" ({lost[0]})" if lost else ""
            raise DataError(
                f"{res.runs[0].path}: no usable leaderboard task in the results{why}; expected leaderboard_ifeval, "
                "leaderboard_bbh_*, leaderboard_math_hard, leaderboard_gpqa, leaderboard_musr_*, leaderboard_mmlu_pro "
                "or the v1 tasks"
            )
        benchmarks = [b for b in FEATURE_COLUMNS if b in scores]
        differences = HS.compare(res, benchmarks)
        notes = list(res.notes) + ([c] if "math_lvl5" in scores and (c := HS.math_caveat(res)) else [])
        out.append(ModelScores(res.model_id, scores, [r.path for r in res.runs], notes,
                               lost + [d.text() for d in differences], HS.provenance(res, benchmarks, differences)))
    return out


def scores_from_results(res: H.ModelResults) -> tuple[dict[str, float], list[str]]:
    """Canonical scores (points) from one model's task results, and what could not be scored (task, metric)."""
    scores: dict[str, float] = {}
    lost: list[str] = []
    if "leaderboard_ifeval" in res.tasks:
        keys = ("prompt_level_strict_acc,none", "inst_level_strict_acc,none")
        values = [res.metric("leaderboard_ifeval", k) for k in keys]
        if None in values:
            lost.append(_lacks(res, "leaderboard_ifeval", keys[values.index(None)], "ifeval"))
        else:
            scores["ifeval"] = sum(values) / 2.0 * 100.0
    for name, table in (("bbh", BBH_CHOICES), ("musr", MUSR_CHOICES)):
        value = _subtask_mean(res, f"leaderboard_{name}_", table, name, lost)
        if value is not None:
            scores[name] = value
    for name, group, metric, subtasks in (
        ("gpqa", "leaderboard_gpqa", "acc_norm,none", [f"leaderboard_gpqa_{s}" for s in GPQA_SUBTASKS]),
        ("math_lvl5", "leaderboard_math_hard", "exact_match,none", [f"leaderboard_math_{s}_hard" for s in MATH_SUBTASKS]),
        ("mmlu_pro", "leaderboard_mmlu_pro", "acc,none", []),
    ):
        raw, before = res.metric(group, metric), len(lost)
        if raw is None and subtasks:
            raw = _weighted_mean(res, subtasks, metric, group, name, lost)
        if raw is not None:
            scores[name] = normalise(raw, LOWER_BOUND[name])
        elif group in res.tasks and len(lost) == before:
            lost.append(_lacks(res, group, metric, name))
    for name, (task, metrics) in V1_TASKS.items():
        raw = next((v for k in metrics if (v := res.metric(task, k)) is not None), None)
        if name == "mmlu":
            subjects = sorted(t for t in res.tasks if t.startswith("mmlu_") and t not in _MMLU_CATEGORIES
                              and "acc,none" in res.tasks[t])
            if len(subjects) == 57:
                raw = sum(res.metric(t, "acc,none") for t in subjects) / 57.0
            elif raw is not None:
                res.notes.append("mmlu: the 57 subjects are not in the results; used the harness's size-weighted mmlu group")
        if raw is not None:
            scores[name] = raw * 100.0
        elif task in res.tasks:
            lost.append(_lacks(res, task, " or ".join(repr(m) for m in metrics), name, quoted=True))
    return scores, lost


def _lacks(res: H.ModelResults, task: str, metric: str, name: str, *, quoted: bool = False) -> str:
    """A task present without the metric a benchmark needs: say which, what it has, and that it stays missing."""
    has = [k for k in res.tasks[task] if "," in k and "_stderr" not in k][:3]
    wanted = metric if quoted else repr(metric)
    return (f"{task} in {res.where(task).name} has no {wanted} (it has {', '.join(has) or 'no metric'}): "
            f"{name} left missing")


def _subtask_mean(res: H.ModelResults, prefix: str, choices: dict[str, int], name: str, lost: list[str]) -> float | None:
    present = [s for s in choices if prefix + s in res.tasks]
    if not present:
        return None
    missing = sorted(set(choices) - set(present))
    if missing:
        raise DataError(
            f"{res.where(prefix + present[0])}: {prefix}* has {len(present)} of {len(choices)} subtasks (missing "
            f"{', '.join(missing[:3])}); the leaderboard score needs all of them: run the whole {prefix.rstrip('_')} group"
        )
    values = []
    for s, k in choices.items():
        raw = res.metric(prefix + s, "acc_norm,none")
        if raw is None:
            lost.append(_lacks(res, prefix + s, "acc_norm,none", name))
            return None
        values.append(normalise(raw, 1.0 / k))
    return sum(values) / len(values)


def _weighted_mean(res: H.ModelResults, subtasks: list[str], metric: str, group: str, name: str,
                   lost: list[str]) -> float | None:
    present = [t for t in subtasks if t in res.tasks]
    if not present:
        return None
    if len(present) < len(subtasks) or any(res.effective(t) is None for t in subtasks):
        raise DataError(
            f"{res.where(present[0])}: no {group} score and not all {len(subtasks)} subtasks with their n-samples "
            f"to compute it; run the whole {group} group"
        )
    raws = {t: res.metric(t, metric) for t in subtasks}
    if (gone := next((t for t, v in raws.items() if v is None), None)) is not None:
        lost.append(_lacks(res, gone, metric, name))
        return None
    total = sum(res.effective(t) for t in subtasks)
    return sum(raws[t] * res.effective(t) for t in subtasks) / total


# --------------------------------------------------------------------------------------------------
# Writing FEATURES.csv: atomic, merging with an existing feature table


def ingest(results: str | Path, out: str | Path, *, model_id: str | None = None, strict: bool = False,
           note: Callable[[str], None] = lambda s: None) -> list[ModelScores]:
    """Read harness results and write/update ``out`` (rows of other models kept; nothing half-written).

    ``strict``: a setting unlike the leaderboard's, or a benchmark lost to a missing metric, is an error
    (nothing written) instead of a note."""
    out = Path(out)
    existing = _existing_features(out)
    models = read_results(results, model_id=model_id)
    if strict and (bad := [(m, d) for m in models for d in m.differences]):
        m, first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{m.files[-1]}: {m.model_id}: {first}{more}; --strict refuses results unlike the "
                        "leaderboard's (leave out --strict to ingest them with notes)")
    for m in models:
        for message in [*m.differences, *m.notes]:
            note(f"{m.model_id}: {message}")
    write_features(out, models, existing)
    return models


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.12g}"


def _existing_features(out: Path) -> Table | None:
    """The table at ``out`` when it exists: it must be a feature table (model_id, features, ``scale``,
    ``lm_eval_*``), so that a label or candidates file is never given feature columns and unlabelled rows."""
    if not out.exists():
        return None
    table = read_table(out)
    table.column("model_id")
    known = {"model_id", S.SCALE_COLUMN, *F.SPECS, *F.DERIVED, *HS.PROVENANCE_COLUMNS}
    other = [c for c in table.header if c not in known and not F.is_presence(c) and not F.is_probe_extra(c)]
    if other:
        raise DataError(f"{out}: not a feature table (its columns {', '.join(repr(c) for c in other[:4])} are not "
                        "features); ingest writes or updates feature tables only: give --out a new file")
    return table


def write_features(out: Path, models: list[ModelScores], table: Table | None = None) -> None:
    """Write the models' rows (``scale`` = percent, so ``rank`` never guesses their unit; ``lm_eval_*``
    say how they were run); an existing feature table keeps its other rows and columns, and an updated
    row keeps the cells ingest does not compute."""
    header = ["model_id", *FEATURE_COLUMNS, S.SCALE_COLUMN, *HS.PROVENANCE_COLUMNS]
    rows: dict[str, dict[str, str]] = {}
    if table is not None:
        j = table.column("model_id")
        header = table.header + [c for c in header if c not in table.header]
        for r in table.rows:
            rows[r[j].strip()] = dict(zip(table.header, r))
        _check_kept_cells_are_points(table, j, models)
    for m in models:
        row = rows.setdefault(m.model_id, {"model_id": m.model_id})
        for name, value in m.scores.items():
            row[name] = _cell(value)
        row[S.SCALE_COLUMN] = "percent"
        row.update(m.settings)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows.values():
        writer.writerow([r.get(c, "") for c in header])
    if not out.parent.is_dir():
        what = "is not a folder" if out.parent.exists() else "does not exist"
        raise DataError(f"{out}: {out.parent} {what}")
    try:
        write_text(out, buf.getvalue())
    except OSError as exc:
        raise DataError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _check_kept_cells_are_points(table: Table, j: int, models: list[ModelScores]) -> None:
    """An updated row is marked percent: the scores it keeps from the old file must be points already."""
    names = [n for n in table.header if n in F.SPECS and F.SPECS[n].is_score]
    scores = {n: np.array([_number(r[table.header.index(n)]) for r in table.rows]) for n in names}
    k = table.header.index(S.SCALE_COLUMN) if S.SCALE_COLUMN in table.header else None
    declared = [_declared(r[k]) if k is not None else "" for r in table.rows]
    factor = S.check_scale(scores, declared).factor
    updated = {m.model_id: m for m in models}
    for i, r in enumerate(table.rows):
        m = updated.get(r[j].strip())
        kept = [n for n in names if m is not None and n not in m.scores and not np.isnan(scores[n][i])]
        if kept and factor[i] != 1.0:
            raise DataError(f"{table.where(i)} ({m.model_id}): its {', '.join(kept)} are fractions and ingest writes "
                            "points; convert that row to points 0-100 or write to a new --out file")


def _number(text: str) -> float:
    try:
        return F.parse_value("ifeval", text)
    except ValueError:
        return math.nan


def _declared(text: str) -> str:
    try:
        return S.parse_declared(text)
    except ValueError:
        return ""
