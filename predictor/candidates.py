"""Candidate tables: a user's CSV (only ``model_id`` required) filled in from the shipped snapshot.

Per feature and model the provenance is kept: ``given`` (the user's file), ``snapshot`` (filled from
the shipped leaderboards and metadata) or ``missing`` (NaN into the model, never 0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from predictor import features as F
from predictor.data import Snapshot, read_csv, require_column
from predictor.errors import DataError

SCALES = ("auto", "percent", "fraction")
GIVEN, SNAPSHOT, MISSING = "given", "snapshot", "missing"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Candidates:
    ids: list[str]
    columns: dict[str, np.ndarray]  # feature name → (N,) float, NaN when unknown
    provenance: dict[str, list[str]]  # feature name → (N,) of given | snapshot | missing

    def __len__(self) -> int:
        return len(self.ids)


def read_candidates(
    path: str | Path, snapshot: Snapshot, *, scale: str = "auto", note: Callable[[str], None] = lambda s: None,
    read_elsewhere: tuple[str, ...] = (),
) -> Candidates:
    """Read a candidates CSV and fill every known id from the snapshot (given values win).

    ``read_elsewhere``: non-feature columns the caller reads itself (``plan``'s lineage), not noted as ignored.
    """
    path = Path(path)
    header, rows = read_csv(path)
    id_col = require_column(path, header, "model_id")
    if not rows:
        raise DataError(f"{path}: no candidate rows below the header")
    feature_cols = {}
    for j, name in enumerate(header):
        if j == id_col or not name or name in read_elsewhere:
            continue
        if name in F.SPECS or F.is_presence(name):
            feature_cols[name] = j
        elif F.is_probe_extra(name):
            continue  # a probe features file used as candidates: spreads and counts are not features
        elif name in F.DERIVED:
            note(f"{path}: column {name!r} is computed by basepick; the file's values are ignored")
        else:
            note(f"{path}: ignoring column {name!r} (not a basepick feature; see `basepick rank --help`)")

    ids = _read_ids(path, rows, id_col)
    given = {name: _read_column(path, rows, name, j) for name, j in feature_cols.items()}
    for name, values in given.items():
        if F.is_presence(name) or not F.SPECS[name].is_score:
            continue
        if scale == "fraction" or (scale == "auto" and F.detect_fraction(values)):
            if scale == "auto":
                note(f"{path}: column {name!r} has all values in [0, 1]: read as fractions and scaled to 0-100")
            given[name] = values * 100.0
    for name, values in given.items():
        for i, value in enumerate(values):
            if (why := F.check_range(name, value)) is not None:
                raise DataError(f"{path} row {i + 2} ({ids[i]}), column {name}: {why}")

    return fill_from_snapshot(ids, given, snapshot, where=str(path))


def fill_from_snapshot(
    ids: list[str], given: dict[str, np.ndarray], snapshot: Snapshot, *, where: str = "candidates"
) -> Candidates:
    """Combine given columns with snapshot values; every SPECS feature (and given presence_*) is present."""
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
        if rows[i] is None and not any(provenance[name][i] == GIVEN for name in names):
            raise DataError(
                f"{where} row {i + 2}: {model_id!r} is not in the shipped leaderboard snapshot and no "
                "scores are given for it; add its benchmark columns (e.g. ifeval, bbh, math_lvl5, gpqa, "
                "musr, mmlu_pro, params_b) or check the id's spelling"
            )
    F.add_derived(columns)
    return Candidates(ids=ids, columns=columns, provenance=provenance)


def _read_ids(path: Path, rows: list[list[str]], id_col: int) -> list[str]:
    ids: list[str] = []
    first_row: dict[str, int] = {}
    for lineno, row in enumerate(rows, start=2):
        model_id = row[id_col].strip()
        if not model_id:
            raise DataError(f"{path} row {lineno}: empty model_id")
        if _CONTROL.search(model_id) or len(model_id) > 200:
            raise DataError(f"{path} row {lineno}: model_id {model_id[:40]!r} is not a Hugging Face model id")
        if model_id in first_row:
            raise DataError(
                f"{path} row {lineno}: duplicate model_id {model_id!r} (first on row {first_row[model_id]}); "
                "keep one row per model"
            )
        first_row[model_id] = lineno
        ids.append(model_id)
    return ids


def _read_column(path: Path, rows: list[list[str]], name: str, j: int) -> np.ndarray:
    values = np.empty(len(rows))
    for i, row in enumerate(rows):
        try:
            values[i] = F.parse_value(name, row[j])
        except ValueError as exc:
            raise DataError(f"{path} row {i + 2}, column {name}: {exc}") from None
    return values


def ids_only(ids: list[str], snapshot: Snapshot) -> Candidates:
    """Candidates from the snapshot alone (``rank --pool leaderboard``)."""
    return fill_from_snapshot(ids, {}, snapshot, where="snapshot")


def with_features(snapshot: Snapshot, paths: list[Path]) -> Snapshot:
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
        table = read_candidates(path, snapshot, scale="percent")
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
