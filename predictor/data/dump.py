"""Reading a benchmark dump for ``basepick check``: an Open LLM Leaderboard v2 CSV, a basepick feature
CSV or lm-evaluation-harness results, validated cell by cell.

Problems are collected, not raised (the report lists them all): values that are not numbers, not
finite or outside 0-100; leaderboard normalised scores that disagree with their raw values; rows of
fractions among points (see ``predictor.data.scale``, the rules ``rank`` reads files by); conflicting rows;
ids that are not model ids; and sizes that contradict the model's name (``features.contradicts_name``).
Unreadable or unrecognised input raises DataError (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictor.data import features as F
from predictor.data import harness_settings as HS
from predictor.data import ingest as I
from predictor.data import scale as S
from predictor.data import shipped as D
from predictor.data import tables as TB
from predictor.errors import DataError

V2_CSV, FEATURES, HARNESS = "leaderboard_v2", "features", "harness"
BENCHMARKS = F.V2_SCORES + F.V1_SCORES
V2_NORMALISED = {name: f"evaluations_{'math' if name == 'math_lvl5' else name}_normalized_score" for name in F.V2_SCORES}
V2_RAW = {name: col.replace("_normalized_score", "_value") for name, col in V2_NORMALISED.items()}


@dataclass
class Dump:
    path: str
    kind: str
    ids: list[str]
    columns: dict[str, np.ndarray]  # feature → (N,) points / params; NaN when missing
    rows: int
    invalid: list[dict] = field(default_factory=list)  # {"row", "model_id", "column", "problem"}
    conflicts: list[dict] = field(default_factory=list)
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)
    sizes: list[dict] = field(default_factory=list)  # params_b contradicting the name: {row, model_id, params_b, stated}
    provenance: list[dict] = field(default_factory=list)  # how lm-eval rows were run: {model_id, lm_eval_*}

    def problem(self, row, model_id, column, problem) -> None:
        self.invalid.append({"row": row, "model_id": model_id, "column": column, "problem": problem})


# --------------------------------------------------------------------------------------------------
# Reading a dump


def load_dump(path: str | Path) -> Dump:
    """Read and validate a dump. Unreadable or unrecognised input raises DataError (exit 2)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".json":
        return _harness(path)
    header, rows = TB.read_csv(path)
    if not rows:
        raise DataError(f"{path}: no rows below the header")
    if "model_name" in header and any(h.startswith("evaluations_") for h in header):
        return _leaderboard(path, header, rows)
    if "model_id" in header:
        return _features(path, header, rows)
    TB.require_column(path, header, "model_id")  # raises, with a delimiter hint where one applies
    raise AssertionError("unreachable")


def _harness(path: Path) -> Dump:
    models = I.read_results(path)
    ids = [m.model_id for m in models]
    columns = {name: np.array([m.scores.get(name, math.nan) for m in models]) for name in BENCHMARKS}
    notes = [f"{m.model_id}: {n}" for m in models for n in [*m.differences, *m.notes]]
    return Dump(str(path), HARNESS, ids, columns, rows=len(models), notes=notes,
                provenance=[{"model_id": m.model_id, **m.settings} for m in models])


def _bad_id(model_id: str) -> str | None:
    if not model_id:
        return "empty model id"
    if I._CONTROL.search(model_id) or len(model_id) > 200:
        return f"{model_id[:40]!r} is not a Hugging Face model id"
    return None


def _cell(dump: Dump, lineno: int, model_id: str, column: str, name: str, text: str) -> float:
    try:
        value = F.parse_value(name, text)
    except ValueError as exc:
        dump.problem(lineno, model_id, column, str(exc))
        return math.nan
    return value


def _leaderboard(path: Path, header: list[str], rows: list[list[str]]) -> Dump:
    c = {name: j for j, name in enumerate(header)}
    dump = Dump(str(path), V2_CSV, [], {}, rows=len(rows))
    missing = [col for col in V2_NORMALISED.values() if col not in c]
    for col in missing:
        dump.problem(1, "", col, "column missing from the header")
    rule = all(k in c for k in ("model_has_chat_template", "features_is_official_provider", "model_precision",
                                "metadata_submission_date", "id"))
    by_model: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        model_id = row[c["model_name"]].strip()
        if (why := _bad_id(model_id)) is not None:
            dump.problem(i + 2, model_id, "model_name", why)
            continue
        by_model.setdefault(model_id, []).append(i)
    values = {name: np.full(len(rows), np.nan) for name in (*F.V2_SCORES, "params_b")}  # (R,) per row
    for i, row in enumerate(rows):
        model_id = row[c["model_name"]].strip()
        for name, col in V2_NORMALISED.items():
            if col not in c:
                continue
            n_problems = len(dump.invalid)
            v = values[name][i] = _cell(dump, i + 2, model_id, col, name, row[c[col]])
            if math.isnan(v) and len(dump.invalid) == n_problems:
                dump.problem(i + 2, model_id, col, "missing score (every leaderboard row has all six)")
            elif (why := F.check_range(name, v)) is not None:
                dump.problem(i + 2, model_id, col, why)
            elif name in I.LOWER_BOUND and V2_RAW[name] in c and not math.isnan(v):
                raw = _cell(dump, i + 2, model_id, V2_RAW[name], name, row[c[V2_RAW[name]]])
                if not math.isnan(raw) and abs(I.normalise(raw, I.LOWER_BOUND[name]) - v) > 0.01:
                    dump.problem(i + 2, model_id, col, f"{v:g} is not the normalisation of the raw score {raw:g} "
                                 f"({I.normalise(raw, I.LOWER_BOUND[name]):.4g})")
        if "metadata_params_billions" in c:
            p = _cell(dump, i + 2, model_id, "metadata_params_billions", "params_b", row[c["metadata_params_billions"]])
            values["params_b"][i] = p if p > 0 else math.nan  # the leaderboard writes 0 for unknown
    for name in F.V2_SCORES:
        known = values[name][~np.isnan(values[name])]
        if known.size >= 20 and F.detect_fraction(known):
            dump.problem(1, "", V2_NORMALISED[name], "every value lies in [0, 1]: fractions, but the leaderboard's "
                         "normalised scores are points 0-100")
    scores = np.stack([values[name] for name in F.V2_SCORES], axis=1)  # (R, 6) points
    for i in np.flatnonzero(np.all(scores <= 1.0, axis=1) & np.any(scores > 0.0, axis=1)):
        dump.problem(int(i) + 2, rows[i][c["model_name"]].strip(), "evaluations_*_normalized_score",
                     "all six scores are at most 1: fractions among the leaderboard's points 0-100")
    chosen = []
    for model_id, members in by_model.items():
        key = (lambda i: D._v2_preference(rows[i], c)) if rule else (lambda i: (i,))
        members.sort(key=key)
        best = members[0]
        chosen.append(best)
        dump.duplicates += len(members) - 1
        for other in members[1:]:
            if rule and key(other)[:-1] != key(best)[:-1]:
                continue  # the row rule prefers `best`: a documented choice, not a conflict
            differ = [n for n in F.V2_SCORES if not _same(values[n][best], values[n][other])]
            if differ:
                dump.conflicts.append({"model_id": model_id, "rows": [best + 2, other + 2], "columns": differ})
    dump.ids = [rows[i][c["model_name"]].strip() for i in chosen]
    dump.columns = {name: col[chosen] for name, col in values.items()}
    _sizes_against_names(dump, [i + 2 for i in chosen], correct=True)
    return dump


def _sizes_against_names(dump: Dump, lines: list[int], *, correct: bool) -> None:
    """Record params_b values that contradict the size the model's name states (a quantised export's
    count); in a leaderboard dump they are replaced by the stated size, as the snapshot does."""
    params = dump.columns.get("params_b")
    if params is None:
        return
    for k, model_id in enumerate(dump.ids):
        if F.contradicts_name(model_id, params[k]):
            stated = F.stated_size(model_id)
            dump.sizes.append({"row": lines[k], "model_id": model_id, "params_b": float(params[k]), "stated": stated})
            if correct:
                params[k] = stated


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 0.01


def _features(path: Path, header: list[str], rows: list[list[str]]) -> Dump:
    j_id = header.index("model_id")
    dump = Dump(str(path), FEATURES, [], {}, rows=len(rows))
    names, j_scale = {}, None
    for j, name in enumerate(header):
        if j == j_id or not name:
            continue
        if name in F.SPECS:
            names[name] = j
        elif name == S.SCALE_COLUMN:
            j_scale = j
        elif name not in HS.PROVENANCE_COLUMNS:
            dump.notes.append(f"{path}: column {name!r} is not checked (not a canonical feature)")
    ids, first, keep, declared = [], {}, [], []
    cols = {name: np.full(len(rows), np.nan) for name in names}
    for i, row in enumerate(rows):
        model_id = row[j_id].strip()
        for name, j in names.items():
            cols[name][i] = _cell(dump, i + 2, model_id, name, name, row[j])
        if (why := _bad_id(model_id)) is not None:
            dump.problem(i + 2, model_id, "model_id", why)
            continue
        if model_id in first:
            dump.duplicates += 1
            k = first[model_id]
            differ = [n for n in names if not _same(cols[n][k], cols[n][i])]
            if differ:
                dump.conflicts.append({"model_id": model_id, "rows": [k + 2, i + 2], "columns": differ})
            continue
        first[model_id] = i
        ids.append(model_id)
        keep.append(i)
        if settings := {c: row[j] for j, c in enumerate(header) if c in HS.PROVENANCE_COLUMNS and row[j].strip()}:
            dump.provenance.append({"model_id": model_id, **settings})
        declared.append(_declared(dump, i + 2, model_id, row[j_scale]) if j_scale is not None else "")
    _scale(dump, path, ids, keep, {name: values[keep] for name, values in cols.items()}, declared)
    return dump


def _declared(dump: Dump, lineno: int, model_id: str, text: str) -> str:
    try:
        return S.parse_declared(text)
    except ValueError as exc:
        dump.problem(lineno, model_id, S.SCALE_COLUMN, str(exc))
        return ""


def _scale(dump: Dump, path: Path, ids: list[str], keep: list[int], cols: dict[str, np.ndarray], declared: list[str]) -> None:
    """Units as `rank` reads them (predictor.data.scale): one decision per file, mixed rows invalid, odd cells noted."""
    scores = {name: values for name, values in cols.items() if F.SPECS[name].is_score}
    unit = S.check_scale(scores, declared)
    if unit.fraction_file:
        dump.notes.append(f"{path}: every score is at most 1: read as fractions, scaled to 0-100")
    for k in unit.mixed_rows:
        dump.problem(keep[k] + 2, ids[k], "scores", "every score is at most 1 while other rows hold percents: "
                     "fractions mixed into percents")
    for k, name, value in unit.out_of_line:
        dump.notes.append(f"{path} row {keep[k] + 2} ({ids[k]}), column {name}: {value:g} is far below the row's "
                          "other scores: a fraction among points?")
    for name in scores:
        cols[name] = cols[name] * unit.factor
    for name, values in cols.items():
        for k, value in enumerate(values):
            if (why := F.check_range(name, value)) is not None:
                dump.problem(keep[k] + 2, ids[k], name, why)
    dump.ids, dump.columns = ids, cols
    _sizes_against_names(dump, [i + 2 for i in keep], correct=False)
