"""``basepick probe compare``: how differently bases score each probe domain (numpy only; no jax).

For every domain and every pair of models, the Jensen-Shannon distance between the two models'
distributions of per-document scores (nats/token):

* Binning: per domain, one shared set of equal-width bins spanning every model's values for that domain
  (per-document scores; mean +- 4 std for a normal approximation), so two models' histograms are compared
  bin by bin. The number of bins is ``bins`` if given, else ``ceil(sqrt(n))`` clipped to [5, 30] for the
  smallest document count n among the models' samples (20 when only normal approximations are known): few
  documents in many bins would make any two models look disjoint. The range spans every model given, so a
  pair's distance can change when other models join the comparison; compare one set of models at a time.
* Few documents: below ``MIN_DOCS`` (20) documents in a domain, the comparison warns that its histograms
  are too small for the distances to be relied on (the shipped probe corpus has 12 per domain).
* Distributions: from a scores file (``basepick probe --scores-out``, JSONL rows ``{model_id, domain,
  score}``) the normalised histogram of the document scores; from a FEATURES.csv (which keeps only the mean
  ``presence_<d>`` and spread ``spread_<d>``) a normal N(presence, spread^2) integrated over the bins, an
  approximation flagged in the output. A model found in both is taken from the scores file.
* Distance: ``sqrt(JSD)`` with base-2 logarithms, as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``:
  0 for identical histograms, 1 for histograms with no bin in common (with natural logs the same
  quantity is at most sqrt(ln 2) = 0.83). It is a metric; NaN where a model lacks the domain.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from predictor.errors import DataError, MissingExtraError
from trainer_jax.data.readers import (
    read_jsonl,  # numpy only: compare needs no train extra
)

SCHEMA_VERSION = 1
DEFAULT_BINS = 20  # bins for a domain known only through normal approximations
MIN_BINS, MAX_BINS = 5, 30  # range of the automatic bin count
MIN_DOCS = 20  # fewer documents per domain than this: the histograms, and so the distances, are noisy
NORMAL_WIDTH = 4.0  # a normal approximation spans mean +- 4 std of the shared bin range


@dataclasses.dataclass(frozen=True)
class ModelScores:
    model_id: str  # model row key
    source: str  # file it was read from
    samples: dict[str, np.ndarray]  # domain -> (n,) per-document scores, nats/token (scores files)
    normals: dict[str, tuple[float, float]]  # domain -> (mean, std), nats/token (FEATURES.csv)

    @property
    def approximate(self) -> bool:
        return bool(self.normals)

    @property
    def domains(self) -> set[str]:
        return set(self.samples) | set(self.normals)


@dataclasses.dataclass(frozen=True)
class Comparison:
    models: tuple[str, ...]  # M model ids, input order
    domains: tuple[str, ...]  # D domains, sorted
    bins: dict[str, int]  # domain -> histogram bins used
    distances: np.ndarray  # (D, M, M) JS distance base 2 in [0, 1], NaN where a model lacks the domain
    approximate: tuple[str, ...]  # models compared through the normal approximation (FEATURES.csv only)

    def mean_distances(self) -> np.ndarray:
        """(M, M) mean over the domains both models have."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": no shared domain -> NaN
            return np.nanmean(self.distances, axis=0)

    def to_json(self) -> dict[str, Any]:
        mean = self.mean_distances()
        pairs = []
        for i, j in _pairs(len(self.models)):
            per = {d: _num(self.distances[k, i, j]) for k, d in enumerate(self.domains)}
            pairs.append({"a": self.models[i], "b": self.models[j], "mean": _num(mean[i, j]), "domains": per})
        return {
            "schema_version": SCHEMA_VERSION,
            "metric": "jensen_shannon_distance_base2",
            "bins": self.bins,
            "models": list(self.models),
            "domains": list(self.domains),
            "approximate": list(self.approximate),
            "pairs": pairs,
        }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


def _pairs(m: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(m) for j in range(i + 1, m)]


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, between two histograms (normalised here); in [0, 1]."""
    p, q = np.asarray(p, np.float64) / np.sum(p), np.asarray(q, np.float64) / np.sum(q)  # (K,) each
    m = 0.5 * (p + q)  # (K,)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


# --------------------------------------------------------------------------------------------------
# Reading


def _read_features(path: Path) -> list[ModelScores]:
    from predictor.data.tables import read_csv, require_column
    from predictor.data.features import is_presence

    header, rows = read_csv(path)
    id_col = require_column(path, header, "model_id")
    domains = [name.removeprefix("presence_") for name in header if is_presence(name)]
    if not domains:
        raise DataError(f"{path}: no presence_<domain> columns; pass a FEATURES.csv written by `basepick probe`")
    for d in domains:
        require_column(path, header, f"spread_{d}")
    out = []
    for lineno, row in enumerate(rows, 2):
        cells = dict(zip(header, row))
        normals = {}
        for d in domains:
            mean, std = cells[f"presence_{d}"].strip(), cells[f"spread_{d}"].strip()
            if not mean:
                continue
            try:
                normals[d] = (float(mean), float(std or 0.0))
            except ValueError:
                raise DataError(f"{path} row {lineno}: presence_{d}/spread_{d} must be numbers") from None
            if not all(math.isfinite(v) for v in normals[d]) or normals[d][1] < 0:
                raise DataError(f"{path} row {lineno}: presence_{d}/spread_{d} must be finite, spread >= 0")
        out.append(ModelScores(row[id_col].strip(), str(path), {}, normals))
    return out


def _read_scores(path: Path) -> list[ModelScores]:
    values: dict[str, dict[str, list[float]]] = {}
    for lineno, row in read_jsonl(path, "scores file"):
        try:
            model, domain, score = row["model_id"], row["domain"], float(row["score"])
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"{path}:{lineno}: expected a JSON row with model_id, domain and a numeric score "
                "(a --scores-out file of `basepick probe`)"
            ) from None
        if not math.isfinite(score):
            raise DataError(f"{path}:{lineno}: score must be a finite number")
        values.setdefault(str(model), {}).setdefault(str(domain), []).append(score)
    if not values:
        raise DataError(f"{path}: no score rows")
    return [ModelScores(m, str(path), {d: np.asarray(v) for d, v in ds.items()}, {}) for m, ds in values.items()]


def read_inputs(paths: Sequence[str | Path], note=lambda message: None) -> list[ModelScores]:
    """Models from FEATURES.csv and scores JSONL(.gz) files; a model in both is taken from the scores file."""
    found: dict[str, ModelScores] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise DataError(f"{path}: is a directory; pass FEATURES.csv or scores .jsonl files")
        models = _read_features(path) if path.name.lower().endswith(".csv") else _read_scores(path)
        for m in models:
            old = found.get(m.model_id)
            if old is None or (old.approximate and not m.approximate):
                found[m.model_id] = m
            elif old.approximate == m.approximate:
                raise DataError(f"model {m.model_id!r} appears in both {old.source} and {m.source}; pass one of them")
    models = list(found.values())
    if len(models) < 2:
        raise DataError("compare needs at least two models across the given files")
    for m in models:
        if m.approximate:
            note(f"{m.model_id}: only means and spreads known ({m.source}); compared as normal distributions")
        few = {d: len(s) for d, s in sorted(m.samples.items()) if len(s) < MIN_DOCS}
        if few:
            counts = ", ".join(f"{d} {n}" for d, n in few.items())
            note(f"{m.model_id}: fewer than {MIN_DOCS} documents in domain(s) {counts}: histograms this small make "
                 "the distances noisy; probe with a larger corpus (--corpus) for distances to rely on")
    return models


# --------------------------------------------------------------------------------------------------
# Comparing


def _normal_cdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    if std == 0.0:
        return (x >= mean).astype(np.float64)  # point mass
    z = (x - mean) / (std * math.sqrt(2.0))
    return 0.5 * (1.0 + np.vectorize(math.erf)(z))


def _histogram(m: ModelScores, domain: str, edges: np.ndarray) -> np.ndarray:
    """(K,) probability of each shared bin for one model's domain."""
    if domain in m.samples:
        counts = np.histogram(m.samples[domain], bins=edges)[0].astype(np.float64)  # (K,) documents
    else:
        mean, std = m.normals[domain]
        if std == 0.0:
            counts = np.histogram([mean], bins=edges)[0].astype(np.float64)
        else:
            counts = np.diff(_normal_cdf(edges, mean, std))  # (K,) mass inside the shared range
    return counts / counts.sum()


def _edges(models: Sequence[ModelScores], domain: str, bins: int) -> np.ndarray:
    lows, highs = [], []
    for m in models:
        if domain in m.samples:
            lows.append(m.samples[domain].min())
            highs.append(m.samples[domain].max())
        elif domain in m.normals:
            mean, std = m.normals[domain]
            lows.append(mean - NORMAL_WIDTH * std)
            highs.append(mean + NORMAL_WIDTH * std)
    lo, hi = min(lows), max(highs)
    if hi - lo < 1e-9:  # every value identical: one-unit range around it
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)  # (K + 1,) nats/token


def auto_bins(models: Sequence[ModelScores], domain: str) -> int:
    """ceil(sqrt(n)) for the fewest documents n among the models' samples, clipped to [MIN_BINS, MAX_BINS]."""
    counts = [m.samples[domain].size for m in models if domain in m.samples]
    if not counts:
        return DEFAULT_BINS
    return int(np.clip(math.ceil(math.sqrt(min(counts))), MIN_BINS, MAX_BINS))


def compare(models: Sequence[ModelScores], *, bins: int | None = None) -> Comparison:
    """JS distances (base 2) between every pair of models, per domain, over a shared binning per domain."""
    if bins is not None and bins < 1:
        raise DataError("--bins must be at least 1")
    domains = tuple(sorted(set().union(*(m.domains for m in models))))
    dist = np.full((len(domains), len(models), len(models)), np.nan)  # (D, M, M)
    used = {}
    for k, domain in enumerate(domains):
        have = [i for i, m in enumerate(models) if domain in m.domains]
        used[domain] = bins or auto_bins([models[i] for i in have], domain)
        edges = _edges([models[i] for i in have], domain, used[domain])
        hist = {i: _histogram(models[i], domain, edges) for i in have}  # model -> (K,)
        for i in have:
            for j in have:
                dist[k, i, j] = 0.0 if i == j else js_distance(hist[i], hist[j])
    approx = tuple(m.model_id for m in models if m.approximate)
    return Comparison(tuple(m.model_id for m in models), domains, used, dist, approx)


def render_table(result: Comparison, file=None) -> None:
    """Rich table on stdout: one row per model pair, one column per domain and the mean."""
    import sys

    from rich.console import Console
    from rich.table import Table

    counts = sorted(set(result.bins.values()))
    bins = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    table = Table(title=f"Jensen-Shannon distance (base 2; 0 same, 1 disjoint; {bins} bins per domain)")
    for name in ("model A", "model B", *result.domains, "mean"):
        table.add_column(name, justify="left" if name.startswith("model") else "right")
    mean = result.mean_distances()
    for i, j in _pairs(len(result.models)):
        cells = [result.distances[k, i, j] for k in range(len(result.domains))] + [mean[i, j]]
        table.add_row(result.models[i], result.models[j], *("-" if math.isnan(c) else f"{c:.3f}" for c in cells))
    file = file or sys.stdout
    tty = file.isatty()  # plain text at a fixed width off a terminal: stable in pipes and tests
    Console(file=file, width=None if tty else 140, no_color=not tty, highlight=False).print(table)


def write_heatmap(result: Comparison, path: str | Path) -> None:
    """PNG: one model x model heatmap for the mean over domains, then one per domain (matplotlib, Agg)."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("plot", "matplotlib") from None
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")  # grey: a model lacks the domain
    panels = [("mean over domains", result.mean_distances())] + [
        (d, result.distances[k]) for k, d in enumerate(result.domains)
    ]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    m = len(result.models)
    size = max(3.2, 0.55 * m + 1.8)
    fig = Figure(figsize=(cols * size + 1.0, rows * size), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, (title, matrix) in zip(axes.flat, panels):
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap=cmap)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(m), result.models, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(m), result.models, fontsize=8)
        for i in range(m):
            for j in range(m):
                if not math.isnan(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] < 0.5 else "black")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.8, label="JS distance (base 2)")
    fig.suptitle("basepick probe compare: per-domain score distributions")
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the heatmap ({exc.strerror or exc})") from None
