"""Labels: the RewardBench scores of reward models trained from a base, one row per (base, recipe, data, eval)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from predictor.data import features as F
from predictor.data.shipped import Snapshot
from predictor.data.tables import Table, read_table
from predictor.errors import DataError

LABEL_KEY = ("model_id", "recipe", "train_data", "eval")
SECTIONS = ("chat", "chat_hard", "safety", "reasoning")
TARGETS = ("score",) + SECTIONS
RECIPES = ("regression", "bradley_terry")


PARTIAL = "partial"  # in a label's eval value (e.g. rewardbench-v1-partial): an incomplete RewardBench run
SCORE_TOLERANCE = 0.15  # points: score must equal the mean of the four sections within this


@dataclass(frozen=True)
class Label:
    model_id: str
    recipe: str  # one of RECIPES
    train_data: str  # e.g. helpsteer2
    eval: str  # e.g. rewardbench-v1; contains "partial" when some subsets were missing or short
    values: dict[str, float]  # target name → RewardBench points 0-100, all five present
    source: str  # "file row N" for error messages

    @property
    def partial(self) -> bool:
        return PARTIAL in self.eval.lower()


def load_labels(sources: list) -> list[Label]:
    """Read label tables (CSV paths or lists of dicts); rows agreeing on (model_id, recipe, train_data,
    eval) merge, and two rows with the same key and different values are an error naming both rows.

    Every row needs a known recipe and RewardBench points (0-100) for ``score`` and the four sections,
    with ``score`` the mean of the sections within ``SCORE_TOLERANCE``: nothing is imputed, and a row
    (or file) of fractions is an error.
    """
    merged: dict[tuple, Label] = {}
    names = []
    for source in sources:
        table = read_table(source)
        names.append(table.name)
        cols = {name: table.column(name) for name in LABEL_KEY + TARGETS}
        parsed = [_label_values(table, i, row, cols) for i, row in enumerate(table.rows)]
        fractions = [i for i, values in enumerate(parsed) if max(values.values()) <= 1.0]
        if fractions and len(fractions) == len(parsed):
            raise DataError(f"{table.name}: every value is at most 1: these are fractions, but labels are "
                            "RewardBench points 0-100; multiply them by 100")
        for i, values in enumerate(parsed):
            where = table.where(i)
            if i in fractions:
                raise DataError(f"{where}: every value is at most 1: fractions among points; labels are "
                                "RewardBench points 0-100")
            mean = float(np.mean([values[s] for s in SECTIONS]))
            if abs(values["score"] - mean) > SCORE_TOLERANCE + 1e-9:  # 81.1 beside 81.25 is within
                raise DataError(f"{where}: score {values['score']:g} is not the mean of the four sections "
                                f"({mean:.2f}, allowed difference {SCORE_TOLERANCE:g}); RewardBench's score is their mean")
            key = tuple(table.rows[i][cols[name]].strip() for name in LABEL_KEY)
            previous = merged.get(key)
            if previous is not None and not _same_values(previous.values, values):
                raise DataError(
                    f"{where} disagrees with {previous.source} for {key[0]} ({key[1]}, {key[2]}, {key[3]}); "
                    "keep one of them"
                )
            merged.setdefault(key, Label(*key, values=values, source=where))
    if not merged:
        raise DataError(f"{', '.join(names)}: no label rows")
    return list(merged.values())


def _label_values(table: Table, i: int, row: list[str], cols: dict[str, int]) -> dict[str, float]:
    """One label row's key checks and its five values, points; raises DataError naming the row."""
    where = table.where(i)
    key = [row[cols[name]].strip() for name in LABEL_KEY]
    if not all(key):
        raise DataError(f"{where}: empty {', '.join(n for n, v in zip(LABEL_KEY, key) if not v)}")
    if key[1] not in RECIPES:
        raise DataError(f"{where}: unknown recipe {key[1][:40]!r} (known: {', '.join(RECIPES)})")
    values = {}
    for name in TARGETS:
        try:
            value = F.parse_value(name, row[cols[name]])
        except ValueError as exc:
            raise DataError(f"{where}, column {name}: {exc}") from None
        if math.isnan(value):
            raise DataError(f"{where}, column {name}: missing (empty or NaN); every label needs score and the four "
                            f"sections {', '.join(SECTIONS)}, nothing is imputed")
        if not 0.0 <= value <= 100.0:
            raise DataError(f"{where}, column {name}: {value:g} is not a RewardBench score in points 0-100")
        values[name] = value
    return values


def refuse_partial(labels: list[Label], allow: bool) -> None:
    """Partial labels (``eval`` contains "partial") are refused unless ``allow``."""
    partial = [lab for lab in labels if lab.partial]
    if partial and not allow:
        first = partial[0]
        raise DataError(f"{first.source}: {len(partial)} partial label(s), e.g. {first.model_id} (eval {first.eval!r}: "
                        "an incomplete RewardBench run); use them anyway with --allow-partial")


def _same_values(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= 0.05 for k in TARGETS)


def join_labels(labels: list[Label], snapshot: Snapshot, recipe: str) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Join one recipe's labels with snapshot features → (ids, feature columns, target → (N,) points)."""
    rows = sorted((l for l in labels if l.recipe == recipe), key=lambda l: (l.model_id, l.train_data, l.eval))
    unknown = sorted({l.model_id for l in rows if l.model_id not in snapshot.index})
    if unknown:
        raise DataError(
            f"labels for models the snapshot does not know: {', '.join(unknown[:5])}"
            f"{' …' if len(unknown) > 5 else ''}; only models with leaderboard scores can be labelled"
        )
    ids = [l.model_id for l in rows]
    index = [snapshot.index[i] for i in ids]
    columns = {name: col[index] for name, col in snapshot.columns.items()}
    targets = {t: np.array([l.values[t] for l in rows]) for t in TARGETS}
    return ids, columns, targets
