"""Labels: the RewardBench scores of reward models trained from a base, one row per (base, recipe, data, eval)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

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
ON_DUPLICATE = ("error", "mean", "last")  # what to do with a base labelled twice for one recipe
LRS_TRIED = "lrs_tried"  # optional column `basepick train --labels-out` writes: learning rates tried
INPUTS = F.V2_SCORES + ("params_b",)  # every ranking method reads these: a labelled base needs them all
_TRAIN_DATA_ALIASES = {"helpsteer-2": "helpsteer2", "helpsteer2-pref": "helpsteer2-preference",
                       "helpsteer-2-preference": "helpsteer2-preference"}


def canonical_train_data(text: str) -> str:
    """``HelpSteer2``, ``nvidia/HelpSteer2`` and ``helpsteer2`` are one data set: case, ``_``/spaces and
    the ``nvidia/`` organisation do not count."""
    name = "-".join(text.strip().casefold().replace("_", " ").split())
    name = name.removeprefix("nvidia/")
    return _TRAIN_DATA_ALIASES.get(name, name)


def canonical_eval(text: str) -> str:
    """``rewardbench``, ``RewardBench``, ``reward-bench`` and ``allenai/reward-bench`` are ``rewardbench-v1``;
    ``rewardbench2`` and ``reward-bench-2`` are ``rewardbench-v2``; a ``-partial`` suffix is kept."""
    name = "-".join(text.strip().casefold().replace("_", " ").split()).removeprefix("allenai/")
    name = name.replace("reward-bench", "rewardbench")
    match = re.fullmatch(r"rewardbench(?:-?v?([12]))?(-.*)?", name)
    if match is None:
        return name
    return f"rewardbench-v{match.group(1) or '1'}{match.group(2) or ''}"


@dataclass(frozen=True)
class Label:
    model_id: str
    recipe: str  # one of RECIPES
    train_data: str  # canonical (canonical_train_data), e.g. helpsteer2
    eval: str  # canonical (canonical_eval), e.g. rewardbench-v1; contains "partial" for an incomplete run
    values: dict[str, float]  # target name → RewardBench points 0-100, all five present
    source: str  # "file row N" for error messages
    lrs_tried: int | None = None  # learning rates `train` tried (its lrs_tried column); the study's: best of 10

    @property
    def partial(self) -> bool:
        return PARTIAL in self.eval

    @property
    def base(self) -> tuple[str, str]:
        """What may be labelled once: the base (its id compared without case) under one recipe."""
        return self.model_id.casefold(), self.recipe


def read_labels(sources: list, *, allow_partial: bool = False, on_duplicate: str = "error",
                note: Callable[[str], None] = lambda s: None) -> list[Label]:
    """The one way ``fit``, ``evaluate``, ``plan`` and ``validate`` read labels: every row checked
    (``load_labels``), partial runs refused unless ``allow_partial``, and each base counted once per
    recipe (``one_per_base``)."""
    labels = load_labels(sources)
    refuse_partial(labels, allow_partial)
    labels = one_per_base(labels, on_duplicate, note)
    if (single := [lab for lab in labels if lab.lrs_tried == 1]):
        note(f"{len(single)} label(s) come from one learning rate (lrs_tried=1), e.g. {single[0].source}: the study's "
             "labels are the best of the recipe's learning-rate grid, so these may sit lower; `basepick train "
             "--lr-sweep` makes labels on the study's scale")
    return labels


def load_labels(sources: list) -> list[Label]:
    """Read label tables (CSV paths or lists of dicts), every row checked; identical rows merge.

    Every row needs a known recipe and RewardBench points (0-100) for ``score`` and the four sections,
    with ``score`` the mean of the sections within ``SCORE_TOLERANCE``: nothing is imputed, and a row
    (or file) of fractions is an error. Rows whose identity (model id without case, recipe, canonical
    train data and eval) and values agree are one label; any other two labels of one base stay apart
    for ``one_per_base`` to judge.
    """
    labels: list[Label] = []
    seen: dict[tuple, Label] = {}
    for source in sources:
        table = read_table(source)
        cols = {name: table.column(name) for name in LABEL_KEY + TARGETS}
        lrs_col = table.header.index(LRS_TRIED) if LRS_TRIED in table.header else None
        if not table.rows:
            raise DataError(f"{table.name}: no label rows below the header; give a file with labels, or leave it out")
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
            model_id, recipe, train_data, eval_ = (table.rows[i][cols[name]].strip() for name in LABEL_KEY)
            lrs = _lrs_tried(where, table.rows[i][lrs_col]) if lrs_col is not None else None
            label = Label(model_id, recipe, canonical_train_data(train_data), canonical_eval(eval_), values, where, lrs)
            key = (*label.base, label.train_data, label.eval)
            if key in seen and _same_values(seen[key].values, values):
                continue  # the same label again (a file given twice): one label
            seen.setdefault(key, label)
            labels.append(label)
    if not labels:
        raise DataError("no label files given")
    return labels


def one_per_base(labels: list[Label], on_duplicate: str = "error", note: Callable[[str], None] = lambda s: None) -> list[Label]:
    """Each base counts once per recipe, whatever its train data or eval say. Two labels of one base are an
    error naming both rows, unless ``on_duplicate`` is ``mean`` (the five values averaged) or ``last``
    (the later row: later file, later line)."""
    if on_duplicate not in ON_DUPLICATE:
        raise DataError(f"on_duplicate {on_duplicate!r} is not one of {', '.join(ON_DUPLICATE)}")
    groups: dict[tuple[str, str], list[Label]] = {}
    for label in labels:
        groups.setdefault(label.base, []).append(label)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        first, second = group[0], group[1]
        if on_duplicate == "error":
            differs = [f"{name} {getattr(first, name)!r} vs {getattr(second, name)!r}"
                       for name in ("train_data", "eval") if getattr(first, name) != getattr(second, name)]
            raise DataError(
                f"{second.source} labels {second.model_id} ({second.recipe}) again after {first.source}"
                f"{' (' + '; '.join(differs) + ')' if differs else ' with other values'}: a base counts once per "
                "recipe; keep one row, or pass --on-duplicate mean|last")
        if on_duplicate == "last":
            out.append(group[-1])
        else:
            values = {t: float(np.mean([lab.values[t] for lab in group])) for t in TARGETS}
            tried = [lab.lrs_tried for lab in group if lab.lrs_tried is not None]
            out.append(Label(group[-1].model_id, group[-1].recipe, group[-1].train_data, group[-1].eval, values,
                             " + ".join(lab.source for lab in group), min(tried) if tried else None))
        note(f"{group[0].model_id} ({group[0].recipe}) is labelled {len(group)} times: "
             f"{'their mean is used' if on_duplicate == 'mean' else 'the last row (' + group[-1].source + ') is used'}")
    return out


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


def _lrs_tried(where: str, cell: str) -> int | None:
    """The optional lrs_tried cell: empty, or a whole number of learning rates (at least 1)."""
    text = cell.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise DataError(f"{where}, column {LRS_TRIED}: {text[:20]!r} is not a count of learning rates (1, 2, ...)")
    return int(value)


def refuse_partial(labels: list[Label], allow: bool) -> None:
    """Partial labels (``eval`` contains "partial") are refused unless ``allow``."""
    partial = [lab for lab in labels if lab.partial]
    if partial and not allow:
        first = partial[0]
        raise DataError(f"{first.source}: {len(partial)} partial label(s), e.g. {first.model_id} (eval {first.eval!r}: "
                        "an incomplete RewardBench run); use them anyway with --allow-partial")


def _same_values(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= 0.05 for k in TARGETS)


def join_labels(labels: list[Label], snapshot: Snapshot, recipe: str, *, exclude: Callable[[str], None] | None = None
                ) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Join one recipe's labels with snapshot features → (ids, feature columns, target → (N,) points).

    A label's base is found without regard to case (the ids come back as the snapshot spells them) and
    must have every one of ``INPUTS``: a base without them would be predicted as the mean and bend the
    fit. Such a row is refused, naming the file, row and missing inputs (nothing is imputed) — or, with
    ``exclude`` (a note function), left out and said there.
    """
    found, left_out = [], []
    for label in (l for l in labels if l.recipe == recipe):
        model_id = snapshot.find(label.model_id)
        row = snapshot.row(model_id) if model_id is not None else None
        missing = list(INPUTS) if row is None else [name for name in INPUTS if math.isnan(row[name])]
        if not missing:
            found.append((model_id, label))
            continue
        if exclude is not None:
            left_out.append(f"{label.model_id} ({', '.join(missing) if row is not None else 'no scores'})")
        elif row is None:
            raise DataError(f"{label.source}: {label.model_id} has no benchmark scores (it is not in the shipped "
                            "snapshot or a --features file); a labelled base needs its leaderboard v2 scores and "
                            "params_b: add them with --features FILE (`basepick ingest` writes one), or drop the row")
        else:
            raise DataError(f"{label.source}: {model_id} lacks {', '.join(missing)}, which every ranking method reads; "
                            "add them with --features FILE (`basepick ingest` writes one), or drop the row")
    if left_out:
        exclude(f"{len(left_out)} labelled base(s) left out for lack of inputs: {'; '.join(left_out[:4])}"
                f"{' …' if len(left_out) > 4 else ''}")
    found.sort(key=lambda pair: (pair[0], pair[1].train_data, pair[1].eval))  # rows in id order, as the snapshot spells them
    ids, rows = [i for i, _ in found], [label for _, label in found]
    index = [snapshot.index[i] for i in ids]
    columns = {name: col[index] for name, col in snapshot.columns.items()}
    targets = {t: np.array([l.values[t] for l in rows]) for t in TARGETS}
    return ids, columns, targets
