"""Fit a predictor bundle from label files: one model per (recipe, target) present in the labels."""

from __future__ import annotations

import platform
from dataclasses import asdict, replace
from typing import Callable

import lightgbm as lgb
import numpy as np

from predictor import __version__
from predictor.data import dataset as DS
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.data.candidates import with_features
from predictor.data.tables import read_table
from predictor.models import methods as Mt
from predictor.models.artifact import Bundle
from predictor.models.calibrate import fit_chosen
from predictor.models.model import ModelConfig

# Bump when a change to fitting makes the same inputs give a different artifact: it enters the
# content version (predictor.models.artifact.content_version), which hashes inputs, never fitted numbers.
FIT_FORMAT = 2


def fit_bundle(
    label_sources: list, *, feature_sources: list = (), config: ModelConfig | None = None, seed: int = 0,
    allow_partial: bool = False, on_duplicate: str = "error", note: Callable[[str], None] = lambda s: None,
) -> Bundle:
    """Fit every (recipe, target) in the labels; return the bundle with its provenance metadata.

    ``label_sources`` and ``feature_sources`` are CSV paths or lists of dicts. Feature tables (e.g.
    presence_* from ``basepick probe``) are merged over the snapshot; presence columns known for any
    labelled model become features. Labels are read by ``labels.read_labels``: partial runs refused unless
    ``allow_partial``, a base labelled twice refused unless ``on_duplicate`` is mean or last.
    """
    config = replace(config or ModelConfig(), seed=seed)
    labels = LB.read_labels(label_sources, allow_partial=allow_partial, on_duplicate=on_duplicate, note=note)
    snapshot = with_features(D.load_snapshot(), list(feature_sources), note=note)
    metadata_of = D.load_model_metadata()
    recipes = sorted({l.recipe for l in labels})
    for recipe in recipes:  # every join and every calibration split is checked before any model is fitted
        DS.require_folds(DS.dataset(labels, snapshot, metadata_of, recipe, "score"), "lineage", f"fit ({recipe})")
    models = {}
    labelled = {}
    for recipe in recipes:
        for target in LB.TARGETS:
            ds = DS.dataset(labels, snapshot, metadata_of, recipe, target)
            models[(recipe, target)] = fit_chosen(ds, config, seed=seed)
            if target == "score":
                params = ds.columns["params_b"]
                labelled[recipe] = {"models": ds.ids, "params_b_range": [float(np.nanmin(params)), float(np.nanmax(params))]}
    bench = D.benchmarks_dir()
    metadata = {
        "basepick_version": __version__,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "lightgbm": lgb.__version__},
        "seed": seed,
        "fit": {"format": FIT_FORMAT, "config": asdict(config), "methods": list(Mt.METHODS), "criterion": Mt.CRITERION},
        "data": {
            "labels": [_provenance(s) for s in label_sources],
            **({"features": [_provenance(s) for s in feature_sources]} if feature_sources else {}),
            "snapshot": {name: D.sha256(bench / name) for name in (D.V2_FILE, D.V1_FILE, D.MODELS_FILE)},
        },
        "labelled": labelled,
    }
    return Bundle(models=models, metadata=metadata)


def _provenance(source) -> dict:
    table = read_table(source)
    return {"file": table.label, "sha256": table.sha256}
