"""Candidate tables: a user's CSV (only ``model_id`` required) filled in from the shipped snapshot,
and the split of candidates into those a ranking method can rank and those it cannot.

Per feature and model the provenance is kept: ``given`` (the user's file), ``snapshot`` (filled from
the shipped leaderboards and metadata) or ``missing`` (NaN into the model, never 0); for rows that
``basepick ingest`` wrote, also how lm-eval was run (its ``lm_eval_*`` columns).

A candidate the method cannot rank (none of its inputs known) is not an error: ``split`` sets it
apart with the one command that would produce its features (``harness_settings.command``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from predictor.data import features as F
from predictor.data import harness_settings as HS
from predictor.data import scale as S
from predictor.data.shipped import Snapshot
from predictor.data.tables import Table, read_table
from predictor.errors import DataError

GIVEN, SNAPSHOT, MISSING = "given", "snapshot", "missing"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Candidates:
    ids: list[str]
    columns: dict[str, np.ndarray]  # feature name → (N,) float, NaN when unknown
    provenance: dict[str, list[str]]  # feature name → (N,) of given | snapshot | missing
    in_snapshot: list[bool] = field(default_factory=list)  # (N,) the shipped snapshot knows the id
    harness: list[dict[str, str] | None] = field(default_factory=list)  # (N,) a row's lm_eval_* cells, if any

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows) -> "Candidates":
        """The candidates at ``rows`` (indices), in that order."""
        rows = [int(i) for i in rows]
        return Candidates(
            ids=[self.ids[i] for i in rows],
            columns={k: v[rows] for k, v in self.columns.items()},
            provenance={k: [v[i] for i in rows] for k, v in self.provenance.items()},
            in_snapshot=[self.in_snapshot[i] for i in rows] if self.in_snapshot else [],
            harness=[self.harness[i] for i in rows] if self.harness else [],
        )


@dataclass(frozen=True)
class Unrankable:
    """A candidate the ranking method cannot rank, and how to get what it lacks."""

    model_id: str
    missing: list[str]  # the method's inputs it lacks (raw columns: v2 scores, params_b, presence_*)
    reason: str  # why it lacks them: not in the shipped snapshot, or in it without those scores
    chat_template: bool  # whether the command applies the chat template (the leaderboard's setting for it)
    chat_template_why: str  # how that was decided: its post_training, its id, or assumed
    command: str  # the one command that produces its features (harness_settings.command)

    def to_json(self) -> dict:
        return {"model_id": self.model_id, "missing": self.missing, "reason": self.reason,
                "chat_template": self.chat_template, "chat_template_why": self.chat_template_why,
                "command": self.command}


def split(candidates: Candidates, groups: list[list[str]], min_inputs: int,
          features_file: str) -> tuple[np.ndarray, list[Unrankable]]:
    """(rows that have at least ``min_inputs`` of the input ``groups``, the others as Unrankable entries
    whose command writes their features into ``features_file``)."""
    names = [n for g in groups for n in g]
    known = np.zeros(len(candidates), dtype=int)
    for group in groups:
        have = np.zeros(len(candidates), dtype=bool)
        for name in group:
            if name in candidates.columns:
                have |= ~np.isnan(candidates.columns[name])
        known += have
    rows = np.flatnonzero(known >= min_inputs)
    out = []
    for i in np.flatnonzero(known < min_inputs):
        model_id = candidates.ids[i]
        chat, why = HS.template_for(model_id, float(candidates.columns["post_training"][i]))
        in_snapshot = candidates.in_snapshot[i] if candidates.in_snapshot else False
        reason = ("in the shipped snapshot, but without these inputs" if in_snapshot else
                  "not in the shipped leaderboard snapshot (it ends 2025-03-21; check the id's spelling)")
        missing = [n for n in names if n not in candidates.columns or np.isnan(candidates.columns[n][i])]
        out.append(Unrankable(model_id, missing, reason, chat, why, HS.command(model_id, chat, features_file)))
    return rows, out


def read_candidates(
    source, snapshot: Snapshot, *, scale: str = "auto", note: Callable[[str], None] = lambda s: None,
    read_elsewhere: tuple[str, ...] = (), allow_unknown: bool = False,
) -> Candidates:
    """Read a candidates table (CSV path or list of dicts) and fill every known id from the snapshot
    (given values win). Score units follow ``predictor.data.scale``: per file, never guessed per column.

    ``read_elsewhere``: non-feature columns the caller reads itself (``plan``'s lineage), not noted as ignored.
    ``allow_unknown``: keep a candidate the snapshot does not know and the file gives nothing for (``rank``
    lists it with the command that gets its features) instead of refusing it.
    """
    table = read_table(source)
    id_col = table.column("model_id")
    if not table.rows:
        raise DataError(f"{table.name}: no candidate rows below the header")
    feature_cols, scale_col, harness_cols = {}, None, {}
    for j, name in enumerate(table.header):
        if j == id_col or not name or name in read_elsewhere:
            continue
        if name in HS.PROVENANCE_COLUMNS:
            harness_cols[name] = j
        elif name in F.SPECS or F.is_presence(name):
            feature_cols[name] = j
        elif name == S.SCALE_COLUMN:
            scale_col = j
        elif F.is_probe_extra(name):
            continue  # a probe features file used as candidates: spreads and counts are not features
        elif name in F.DERIVED:
            note(f"{table.name}: column {name!r} is computed by basepick; the file's values are ignored")
        else:
            note(f"{table.name}: ignoring column {name!r} (not a basepick feature; see `basepick rank --help`)")

    ids = _read_ids(table, id_col)
    given = {name: _read_column(table, name, j) for name, j in feature_cols.items()}
    declared = [_declared(table, i, row, scale_col) for i, row in enumerate(table.rows)]
    _apply_scale(table, ids, given, declared, scale, note)
    for name, values in given.items():
        for i, value in enumerate(values):
            if (why := F.check_range(name, value)) is not None:
                raise DataError(f"{table.where(i)} ({ids[i]}), column {name}: {why}")
    if "params_b" in given:
        for i, (model_id, p) in enumerate(zip(ids, given["params_b"])):
            if F.contradicts_name(model_id, p):
                note(f"{table.where(i)} ({model_id}): params_b {p:g} is under {F.NAME_SIZE_RATIO:.0%} of the "
                     f"{F.stated_size(model_id):g}B its name states (a quantised export's count?); the given value is used")
    filled = fill_from_snapshot(ids, given, snapshot, where=table.where, allow_unknown=allow_unknown)
    filled.harness = [{c: row[j].strip() for c, j in harness_cols.items() if row[j].strip()} or None
                      for row in table.rows]
    return filled


def _declared(table: Table, i: int, row: list[str], j: int | None) -> str:
    if j is None:
        return ""
    try:
        return S.parse_declared(row[j])
    except ValueError as exc:
        raise DataError(f"{table.where(i)}, column {S.SCALE_COLUMN}: {exc}") from None


def _apply_scale(table: Table, ids: list[str], given: dict[str, np.ndarray], declared: list[str], scale: str,
                 note: Callable[[str], None]) -> None:
    """Rescale the given score columns to points in place (see predictor.data.scale); mixed rows are an error."""
    scores = {name: values for name, values in given.items() if name in F.SPECS and F.SPECS[name].is_score}
    check = S.check_scale(scores, declared, scale)
    if check.mixed_rows:
        i = check.mixed_rows[0]
        raise DataError(f"{table.where(i)} ({ids[i]}): every score is at most 1 while other rows hold percents: "
                        "fractions mixed into percents; give points 0-100 (or --scale to say which unit the file uses)")
    if check.fraction_file:
        note(f"{table.name}: every score is at most 1: read as fractions and scaled to 0-100 "
             "(--scale percent if they are points)")
    for i, name, value in check.out_of_line:
        note(f"{table.where(i)} ({ids[i]}), column {name}: {value:g} is far below the row's other scores: "
             "a fraction among points? it is read as points")
    for name, values in scores.items():
        given[name] = values * check.factor  # points, 0-100


def fill_from_snapshot(
    ids: list[str], given: dict[str, np.ndarray], snapshot: Snapshot, *,
    where: Callable[[int], str] = lambda i: f"candidate {i + 1}", allow_unknown: bool = False,
) -> Candidates:
    """Combine given columns with snapshot values; every SPECS feature (and given presence_*) is present.
    An id neither the snapshot nor ``given`` knows is an error unless ``allow_unknown``."""
    n = len(ids)
    rows = [snapshot.index.get(model_id) for model_id in ids]
    names = list(F.SPECS) + sorted(name for name in given if F.is_presence(name))
    columns: dict[str, np.ndarray] = {}
    provenance: dict[str, list[str]] = {}
    for name in names:
        col = np.full(n, np.nan)
        source = [MISSING] * n
        snap = snapshot.columns.get(name)
        for i, r in enumerate(rows):
            if snap is not None and r is not None and not math.isnan(snap[r]):
                col[i], source[i] = snap[r], SNAPSHOT
        if name in given:
            mask = ~np.isnan(given[name])
            col[mask] = given[name][mask]
            source = [GIVEN if m else s for m, s in zip(mask, source)]
        columns[name], provenance[name] = col, source
    for i, model_id in enumerate(ids):
        if not allow_unknown and rows[i] is None and not any(provenance[name][i] == GIVEN for name in names):
            raise DataError(
                f"{where(i)}: {model_id!r} is not in the shipped leaderboard snapshot and no "
                "scores are given for it; add its benchmark columns (e.g. ifeval, bbh, math_lvl5, gpqa, "
                "musr, mmlu_pro, params_b) or check the id's spelling"
            )
    F.add_derived(columns)
    return Candidates(ids=ids, columns=columns, provenance=provenance, in_snapshot=[r is not None for r in rows],
                      harness=[None] * n)


def _read_ids(table: Table, id_col: int) -> list[str]:
    ids: list[str] = []
    first_row: dict[str, int] = {}
    for i, row in enumerate(table.rows):
        model_id = row[id_col].strip()
        where = table.where(i)
        if not model_id:
            raise DataError(f"{where}: empty model_id")
        if _CONTROL.search(model_id) or len(model_id) > 200:
            raise DataError(f"{where}: model_id {model_id[:40]!r} is not a Hugging Face model id")
        if model_id in first_row:
            raise DataError(f"{where}: duplicate model_id {model_id!r} (first on {table.row_name(first_row[model_id])}); "
                            "keep one row per model")
        first_row[model_id] = i
        ids.append(model_id)
    return ids


def _read_column(table: Table, name: str, j: int) -> np.ndarray:
    values = np.empty(len(table.rows))
    for i, row in enumerate(table.rows):
        try:
            values[i] = F.parse_value(name, row[j])
        except ValueError as exc:
            raise DataError(f"{table.where(i)}, column {name}: {exc}") from None
    return values


def ids_only(ids: list[str], snapshot: Snapshot) -> Candidates:
    """Candidates from the snapshot alone (``rank --pool leaderboard``)."""
    return fill_from_snapshot(ids, {}, snapshot)


def with_features(snapshot: Snapshot, paths: list, note: Callable[[str], None] = lambda s: None) -> Snapshot:
    """The snapshot with feature files merged in (e.g. presence_* from ``basepick probe``).

    A file's known values override the snapshot's for its models; new models are added; a column
    the snapshot lacks (presence_<domain>) is NaN for every other model.
    """
    if not paths:
        return snapshot
    ids = list(snapshot.ids)
    index = dict(snapshot.index)
    columns = {k: v.copy() for k, v in snapshot.columns.items()}
    for path in paths:
        table = read_candidates(path, snapshot, note=note)
        for model_id in table.ids:
            if model_id not in index:
                index[model_id] = len(ids)
                ids.append(model_id)
        grow = len(ids) - len(next(iter(columns.values())))
        for name in columns:
            columns[name] = np.concatenate([columns[name], np.full(grow, np.nan)])
        at = np.array([index[m] for m in table.ids])
        for name, values in table.columns.items():
            if name in F.DERIVED:
                continue
            column = columns.setdefault(name, np.full(len(ids), np.nan))
            given = np.array([p == GIVEN for p in table.provenance[name]])
            column[at[given]] = values[given]
    F.add_derived(columns)
    return Snapshot(ids=ids, columns=columns, v2_ids=snapshot.v2_ids)
