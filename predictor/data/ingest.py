"""lm-evaluation-harness results → basepick's canonical features, normalised like the Open LLM Leaderboard.

Input: the ``results_<timestamp>.json`` files ``lm_eval --output_path DIR`` writes (one folder per model,
``DIR/<org>__<name>/results_<ISO time>.json``; lm_eval/loggers/evaluation_tracker.py). Each holds
``results`` (task → ``"<metric>,<filter>"`` → value; group aggregates included, newer versions repeat
them under ``groups``), ``group_subtasks``, ``configs``, ``versions``, ``n-shot``, ``n-samples``,
``config`` (``model``, ``model_args`` as a string ``pretrained=ORG/NAME,...`` or a dict, ``limit``) and
``model_name``.

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
  points above the harness's ``exact_match``. basepick uses ``exact_match`` (what the harness gives)
  and says so on stderr.
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
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from predictor.data import features as F
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
# v1: canonical name → (harness task, metric keys tried in order, the leaderboard's n-shot)
V1_TASKS = {
    "arc": ("arc_challenge", ("acc_norm,none",), 25),
    "hellaswag": ("hellaswag", ("acc_norm,none",), 10),
    "mmlu": ("mmlu", ("acc,none",), 5),
    "truthfulqa": ("truthfulqa_mc2", ("acc,none",), 0),
    "winogrande": ("winogrande", ("acc,none",), 5),
    "gsm8k": ("gsm8k", ("exact_match,strict-match", "exact_match,get-answer"), 5),
}
_MMLU_CATEGORIES = {"mmlu_humanities", "mmlu_stem", "mmlu_social_sciences", "mmlu_other"}
FEATURE_COLUMNS = F.V2_SCORES + F.V1_SCORES
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise(raw: float, lower: float) -> float:
    """Leaderboard v2 normalisation of one raw fraction → points 0-100 (below chance → 0)."""
    return max(raw - lower, 0.0) / (1.0 - lower) * 100.0


@dataclass
class ModelScores:
    model_id: str
    scores: dict[str, float]  # canonical feature → points 0-100
    files: list[Path]
    notes: list[str] = field(default_factory=list)


class _Results:
    """One model's task results merged over its files (later files win), with where each came from."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict] = {}
        self.where: dict[str, Path] = {}
        self.n_samples: dict[str, float] = {}
        self.n_shot: dict[str, object] = {}
        self.limit: object = None  # config.limit of a file run on a subset

    def metric(self, task: str, key: str) -> float | None:
        entry = self.tasks.get(task)
        if entry is None or key not in entry:
            return None
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise DataError(
                f"{self.where[task]}: results.{task}[{key!r}] is {str(value)[:40]!r}, not an accuracy in [0, 1]; "
                "re-run the task or remove the file"
            )
        return float(value)


def _load_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DataError(f"{path}: file is empty; expected an lm-evaluation-harness results JSON")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected an lm-evaluation-harness results JSON") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = getattr(exc, "msg", "nested too deeply")
        raise DataError(f"{path}: not valid JSON ({reason}); expected an lm-evaluation-harness results JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise DataError(f"{path}: not an lm-evaluation-harness results file (no 'results' object)")
    return doc


def _dict(doc: dict, key: str) -> dict:
    """``doc[key]`` when it is an object, else {} (sections other tools may leave out or fill oddly)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def model_name(doc: dict, path: Path) -> str:
    """The evaluated model as lm_eval names it: ``model_name``, else ``pretrained=`` etc. in model_args."""
    name = doc.get("model_name") if isinstance(doc.get("model_name"), str) else ""
    args = _dict(doc, "config").get("model_args")
    if not name and isinstance(args, dict):
        name = next((str(args[k]) for k in ("peft", "delta", "pretrained", "model", "path", "engine") if args.get(k)), "")
    elif not name and isinstance(args, str):
        for prefix in ("peft=", "delta=", "pretrained=", "model=", "path=", "engine="):
            if prefix in args:
                name = args.split(prefix, 1)[1].split(",", 1)[0]
                break
    name = name.strip()
    if not name:
        raise DataError(f"{path}: names no model (no model_name, no pretrained= in config.model_args); pass --model-id")
    return name


def _name_or_placeholder(doc: dict, path: Path) -> str:
    """The files' own model name, only to tell models apart when --model-id replaces it."""
    try:
        return model_name(doc, path)
    except DataError:
        return ""


def check_model_id(model_id: str, where: str) -> str:
    if not model_id or _CONTROL.search(model_id) or len(model_id) > 200:
        raise DataError(f"{where}: model id {model_id[:40]!r} is not a Hugging Face model id; pass --model-id ORG/NAME")
    if model_id.startswith(("/", "./", "../", "~")) or "\\" in model_id:
        raise DataError(f"{where}: the model was loaded from a local path ({model_id[:60]}); pass --model-id ORG/NAME")
    return model_id


def find_results(path: Path) -> list[Path]:
    """``results*.json`` under a directory (sorted: harness timestamps sort chronologically), or the file."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("results*.json") if p.is_file())
    if not files:
        raise DataError(f"{path}: no lm-evaluation-harness results_*.json files in this folder or below it")
    return files


def read_results(path: str | Path, *, model_id: str | None = None) -> list[ModelScores]:
    """Read every results file under ``path`` → one ModelScores per model (files of a model merged)."""
    files = find_results(Path(path))
    per_model: dict[str, tuple[_Results, list[Path]]] = {}
    for f in files:
        doc = _load_json(f)
        name = model_name(doc, f) if model_id is None else _name_or_placeholder(doc, f)
        res, used = per_model.setdefault(name, (_Results(), []))
        used.append(f)
        for task, entry in {**_dict(doc, "groups"), **doc["results"]}.items():
            if isinstance(entry, dict):
                res.tasks[task], res.where[task] = entry, f
        for task, entry in _dict(doc, "n-samples").items():
            if isinstance(entry, dict) and isinstance(entry.get("effective"), (int, float)):
                res.n_samples[task] = float(entry["effective"])
        res.n_shot.update(_dict(doc, "n-shot"))
        limit = _dict(doc, "config").get("limit")
        if limit not in (None, 0):
            res.limit = limit
    if model_id is not None:
        if len(per_model) > 1:
            raise DataError(f"{path}: --model-id names one model but the files hold several ({', '.join(sorted(per_model)[:3])})")
        per_model = {model_id: next(iter(per_model.values()))}
    out = []
    for name, (res, used) in per_model.items():
        check_model_id(name, str(used[0]))
        scores, notes = scores_from_results(res)
        if not scores:
            raise DataError(
                f"{used[0]}: no leaderboard task in the results (expected leaderboard_ifeval, leaderboard_bbh_*, "
                "leaderboard_math_hard, leaderboard_gpqa, leaderboard_musr_*, leaderboard_mmlu_pro or the v1 tasks)"
            )
        if res.limit is not None:
            notes.append(f"evaluated with --limit {res.limit}: scores from a subset are noisy")
        out.append(ModelScores(name, scores, used, notes))
    return sorted(out, key=lambda m: m.model_id)


def scores_from_results(res: _Results) -> tuple[dict[str, float], list[str]]:
    """Canonical scores (points) from one model's task results, and notes for stderr."""
    scores: dict[str, float] = {}
    notes: list[str] = []
    prompt = res.metric("leaderboard_ifeval", "prompt_level_strict_acc,none")
    inst = res.metric("leaderboard_ifeval", "inst_level_strict_acc,none")
    if prompt is not None and inst is not None:
        scores["ifeval"] = (prompt + inst) / 2.0 * 100.0
    for name, table in (("bbh", BBH_CHOICES), ("musr", MUSR_CHOICES)):
        value = _subtask_mean(res, f"leaderboard_{name}_", table)
        if value is not None:
            scores[name] = value
    for name, group, metric, subtasks in (
        ("gpqa", "leaderboard_gpqa", "acc_norm,none", [f"leaderboard_gpqa_{s}" for s in GPQA_SUBTASKS]),
        ("math_lvl5", "leaderboard_math_hard", "exact_match,none", [f"leaderboard_math_{s}_hard" for s in MATH_SUBTASKS]),
        ("mmlu_pro", "leaderboard_mmlu_pro", "acc,none", []),
    ):
        raw = res.metric(group, metric)
        if raw is None and subtasks:
            raw = _weighted_mean(res, subtasks, metric, group)
        if raw is not None:
            scores[name] = normalise(raw, LOWER_BOUND[name])
    if "math_lvl5" in scores:
        notes.append("math_lvl5 is the harness's exact_match; the leaderboard's final export re-scored MATH with "
                     "Math-Verify (~4.7 points higher on average)")
    for name, (task, metrics, shots) in V1_TASKS.items():
        raw = next((v for k in metrics if (v := res.metric(task, k)) is not None), None)
        if name == "mmlu":
            subjects = sorted(t for t in res.tasks if t.startswith("mmlu_") and t not in _MMLU_CATEGORIES
                              and "acc,none" in res.tasks[t])
            if len(subjects) == 57:
                raw = sum(res.metric(t, "acc,none") for t in subjects) / 57.0
            elif raw is not None:
                notes.append("mmlu: the 57 subjects are not in the results; used the harness's size-weighted mmlu group")
        if raw is None:
            continue
        scores[name] = raw * 100.0
        given = res.n_shot.get(task)
        if given not in (None, shots, str(shots)):
            notes.append(f"{task} ran {given}-shot; leaderboard v1 used {shots}-shot")
    return scores, notes


def _subtask_mean(res: _Results, prefix: str, choices: dict[str, int]) -> float | None:
    present = [s for s in choices if prefix + s in res.tasks]
    if not present:
        return None
    missing = sorted(set(choices) - set(present))
    if missing:
        where = res.where[prefix + present[0]]
        raise DataError(
            f"{where}: {prefix}* has {len(present)} of {len(choices)} subtasks (missing {', '.join(missing[:3])}); "
            f"the leaderboard score needs all of them: run the whole {prefix.rstrip('_')} group"
        )
    values = []
    for s, k in choices.items():
        raw = res.metric(prefix + s, "acc_norm,none")
        if raw is None:
            raise DataError(f"{res.where[prefix + s]}: results.{prefix}{s} has no 'acc_norm,none'")
        values.append(normalise(raw, 1.0 / k))
    return sum(values) / len(values)


def _weighted_mean(res: _Results, subtasks: list[str], metric: str, group: str) -> float | None:
    present = [t for t in subtasks if t in res.tasks]
    if not present:
        return None
    if len(present) < len(subtasks) or any(t not in res.n_samples for t in subtasks):
        raise DataError(
            f"{res.where[present[0]]}: no {group} score and not all {len(subtasks)} subtasks with their n-samples "
            f"to compute it; run the whole {group} group"
        )
    total = sum(res.n_samples[t] for t in subtasks)
    return sum(res.metric(t, metric) * res.n_samples[t] for t in subtasks) / total


# --------------------------------------------------------------------------------------------------
# Writing FEATURES.csv: atomic, merging with an existing file


def ingest(results: str | Path, out: str | Path, *, model_id: str | None = None,
           note: Callable[[str], None] = lambda s: None) -> list[ModelScores]:
    """Read harness results and write/update ``out`` (rows of other models kept; nothing half-written)."""
    models = read_results(results, model_id=model_id)
    for m in models:
        for message in m.notes:
            note(f"{m.model_id}: {message}")
    write_features(Path(out), models)
    return models


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.12g}"


def write_features(out: Path, models: list[ModelScores]) -> None:
    """Write the models' rows (``scale`` = percent, so ``rank`` never guesses their unit); an existing
    file keeps its other rows and columns, and an updated row keeps the cells ingest does not compute."""
    header = ["model_id", *FEATURE_COLUMNS, S.SCALE_COLUMN]
    rows: dict[str, dict[str, str]] = {}
    if out.exists():
        table = read_table(out)
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
