"""Percent or fraction: the unit of a table's benchmark scores, decided per file, never per column.

- A ``scale`` column (``percent`` or ``fraction``) declares a row's unit. ``basepick ingest`` writes it,
  so nothing basepick wrote is ever guessed.
- The other rows are judged together: if every score cell among them is at most 1 they are fractions
  (and a note says so); if any is above 1 they are percent, and small values are real — weak models
  score under 1 point on GPQA or MATH Lvl 5 after the leaderboard's chance normalisation.
- In such a percent file, a row whose score cells are all at most 1 (not all 0) is an error naming the
  row: fractions mixed into percents.
- A cell at most 1 of a benchmark that real models rarely score near 0 on (IFEval, BBH, MMLU-Pro and the
  v1 accuracies, whose chance level is 20-50 points) gets a warning when the row's other scores of the
  same leaderboard have a median of at least 10 points: IFEval 0.6 beside BBH 40.
- ``--scale percent|fraction`` overrides all of it: no guess, no check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from predictor.data import features as F

SCALE_COLUMN = "scale"
SCALES = ("auto", "percent", "fraction")
DECLARED = ("percent", "fraction")
RARELY_NEAR_ZERO = ("ifeval", "bbh", "mmlu_pro", "arc", "hellaswag", "mmlu", "truthfulqa", "winogrande")
OUT_OF_LINE_MEDIAN = 10.0  # points: a row's other scores this high make a cell <= 1 suspicious


@dataclass
class ScaleCheck:
    factor: np.ndarray  # (N,) multiply a row's score cells by this: 100 for fractions, 1 for percent
    fraction_file: bool  # the undeclared rows were read as fractions (say so)
    mixed_rows: list[int] = field(default_factory=list)  # rows of fractions among percents (an error)
    out_of_line: list[tuple[int, str, float]] = field(default_factory=list)  # (row, column, value): warn


def parse_declared(text: str) -> str:
    """A ``scale`` cell → "" (undeclared), "percent" or "fraction"; ValueError otherwise."""
    value = text.strip().lower()
    if value not in ("",) + DECLARED:
        raise ValueError(f"{text[:40]!r} is not percent or fraction")
    return value


def check_scale(scores: dict[str, np.ndarray], declared: list[str], scale: str = "auto") -> ScaleCheck:
    """Decide each row's unit. ``scores``: score column → (N,) values as written (NaN missing);
    ``declared``: per row "", "percent" or "fraction"; ``scale``: auto, or an override."""
    n = len(declared)
    if scale in DECLARED:
        return ScaleCheck(np.full(n, 100.0 if scale == "fraction" else 1.0), False)
    names = [name for name in scores if F.SPECS[name].is_score]
    cells = np.stack([scores[name] for name in names], axis=1) if names else np.full((n, 0), np.nan)  # (N, S)
    guess = np.array([d == "" for d in declared], dtype=bool)
    known = cells[guess][~np.isnan(cells[guess])]
    fraction_file = known.size > 0 and bool(np.all(known <= 1.0))
    factor = np.array([100.0 if d == "fraction" or (d == "" and fraction_file) else 1.0 for d in declared])
    out = ScaleCheck(factor, fraction_file)
    if fraction_file:
        return out
    for i in np.flatnonzero(guess):
        row = cells[i]
        have = ~np.isnan(row)
        if have.any() and np.all(row[have] <= 1.0) and np.any(row[have] > 0.0):
            out.mixed_rows.append(int(i))
            continue
        for j, name in enumerate(names):
            if name in RARELY_NEAR_ZERO and 0.0 < row[j] <= 1.0 and _others_median(names, row, j) >= OUT_OF_LINE_MEDIAN:
                out.out_of_line.append((int(i), name, float(row[j])))
    return out


def _others_median(names: list[str], row: np.ndarray, j: int) -> float:
    """Median of the row's other known scores from the same leaderboard (v2 or v1) as column j."""
    group = F.V2_SCORES if names[j] in F.V2_SCORES else F.V1_SCORES
    others = [row[k] for k, name in enumerate(names) if k != j and name in group and not np.isnan(row[k])]
    return float(np.median(others)) if others else float("nan")
