"""Fit a predictor bundle from label files: one model per (recipe, target) present in the labels."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np

from predictor import __version__
from predictor import data as D
from predictor.artifact import Bundle
from predictor.errors import DataError
from predictor.model import ModelConfig, RewardPredictor


def training_table(labels: list[D.Label], snapshot: D.Snapshot, recipe: str) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
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
    targets = {t: np.array([l.values[t] for l in rows]) for t in D.TARGETS}
    return ids, columns, targets


def fit_bundle(label_paths: list[Path], *, config: ModelConfig | None = None, seed: int = 0) -> Bundle:
    """Fit every (recipe, target) in the labels; return the bundle with its provenance metadata."""
    config = replace(config or ModelConfig(), seed=seed)
    labels = D.load_labels(label_paths)
    snapshot = D.load_snapshot()
    models = {}
    labelled = {}
    for recipe in sorted({l.recipe for l in labels}):
        ids, columns, targets = training_table(labels, snapshot, recipe)
        for target, y in targets.items():
            known = ~np.isnan(y)
            if known.sum() < 2 * config.min_data_in_leaf:
                continue  # a section nobody reported for this recipe
            subset = {name: col[known] for name, col in columns.items()}
            models[(recipe, target)] = RewardPredictor(config).fit(subset, y[known])
        params = columns["params_b"]
        labelled[recipe] = {
            "models": ids,
            "params_b_range": [float(np.nanmin(params)), float(np.nanmax(params))],
        }
    if not models:
        raise DataError("no recipe has enough labelled models to fit")
    bench = D.benchmarks_dir()
    metadata = {
        "basepick_version": __version__,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "lightgbm": lgb.__version__},
        "seed": seed,
        "data": {
            "labels": [{"file": Path(p).name, "sha256": D.sha256(p)} for p in label_paths],
            "snapshot": {name: D.sha256(bench / name) for name in (D.V2_FILE, D.V1_FILE, D.MODELS_FILE)},
        },
        "labelled": labelled,
    }
    return Bundle(models=models, metadata=metadata)
