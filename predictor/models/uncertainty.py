"""How wrong a ranking method is out of sample: lineage correlation and missing inputs.

Both come from leave-one-lineage-out residuals (measured − predicted, points); the predictive
distribution built on them is predictor.models.predictive.

- ``lineage_correlation``: the correlation of residuals of two bases of one lineage (pairs of one
  lineage, moment estimator, clipped to [0, 0.9]). A measured base then says something about its
  siblings (``predictor.models.bayes``).
- missing inputs: a candidate that lacks some of the method's inputs gets its interval widened by
  ``ratio = RMS(residuals with those inputs masked) / RMS(residuals)`` (at least 1), measured by
  masking the same inputs in the held-out rows of every lineage-out fold. Inputs are the method's
  raw columns (each v2 score, params_b; every presence_* column together). A candidate with none of
  them is refused (``MIN_INPUTS``).
"""

from __future__ import annotations

import itertools

import numpy as np

from predictor.data import features as F
from predictor.errors import DataError

RHO_MAX = 0.9
MIN_INPUTS = 1  # a candidate must have at least this many of the method's input groups


def lineage_correlation(residuals: np.ndarray, lineage: np.ndarray) -> float:
    """Mean product of residual pairs within a lineage over the mean squared residual, in [0, RHO_MAX]."""
    r = np.asarray(residuals, float)
    products = [r[i] * r[j] for g in np.unique(lineage)
                for i, j in itertools.combinations(np.flatnonzero(lineage == g), 2)]
    if not products or not np.mean(r * r) > 0:
        return 0.0
    return float(np.clip(np.mean(products) / np.mean(r * r), 0.0, RHO_MAX))


def input_groups(inputs: list[str]) -> list[list[str]]:
    """Each input alone, except presence_* columns, which `basepick probe` writes together."""
    presence = [n for n in inputs if F.is_presence(n)]
    return [[n] for n in inputs if not F.is_presence(n)] + ([presence] if presence else [])


def masked(columns: dict[str, np.ndarray], groups: list[list[str]]) -> dict[str, np.ndarray]:
    """Every row repeated once per missingness pattern (pattern-major, 2**len(groups) blocks), derived
    columns recomputed: pattern p masks group j when bit j of p is set."""
    n = len(next(iter(columns.values())))
    patterns = np.arange(2 ** len(groups))
    out = {k: np.tile(v, len(patterns)) for k, v in columns.items()}
    block = np.repeat(patterns, n)  # (P·n,) pattern of each row
    for j, group in enumerate(groups):
        hide = (block >> j) & 1 == 1
        for name in group:
            if name in out:
                out[name] = np.where(hide, np.nan, out[name])
    F.add_derived(out)
    return out


def patterns(columns: dict[str, np.ndarray], groups: list[list[str]]) -> np.ndarray:
    """(N,) missingness pattern of each row: bit j set when any column of group j is missing."""
    n = len(next(iter(columns.values())))
    out = np.zeros(n, dtype=int)
    for j, group in enumerate(groups):
        gone = np.zeros(n, dtype=bool)
        for name in group:
            gone |= np.isnan(columns[name]) if name in columns else True
        out |= gone.astype(int) << j
    return out


def masked_ratios(y: np.ndarray, masked_pred: np.ndarray) -> list[float]:
    """Per pattern, RMS of residuals with the pattern's inputs masked over RMS unmasked (pattern 0), >= 1."""
    rms = np.sqrt(np.mean((y[None, :] - masked_pred) ** 2, axis=1))  # (P,)
    return [round(float(max(r / rms[0], 1.0)), 3) for r in rms]


def widening(calibration: dict | None, columns: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    """(N,) factor by which each candidate's interval widens for its missing inputs (1 when none)."""
    n = len(ids)
    missing = (calibration or {}).get("missing")
    if not missing:
        return np.ones(n)
    groups = missing["groups"]
    pattern = patterns(columns, groups)
    known = len(groups) - np.array([bin(p).count("1") for p in pattern])
    if (bad := np.flatnonzero(known < MIN_INPUTS)).size:
        i = int(bad[0])
        raise DataError(
            f"{ids[i]!r} has none of the inputs the ranking method uses ({', '.join(itertools.chain(*groups))}); "
            f"basepick needs at least {MIN_INPUTS} of them to predict: add one of these columns to its row, or drop it"
        )
    return np.asarray(missing["ratios"], float)[pattern]

