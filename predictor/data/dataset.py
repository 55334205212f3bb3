"""A recipe's labels joined with their features, and the folds that hold lineages (or later releases) out.

Primary split: whole lineages held out (models of one lineage share data and publisher habits).
Secondary: release date (train on earlier releases, predict later ones). Random k-fold is only an
optimistic reference. ``out_of_fold`` runs any ``(train, test) -> predictions`` function over a split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predictor.data import features as F
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.data.candidates import with_features
from predictor.data.lineage import lineage_of
from predictor.errors import DataError

SPLITS = ("lineage", "temporal", "random")  # evaluation splits, primary first
MIN_TRAIN = 8  # models a fold must train on, else its test models are not predicted
MIN_PREDICTED = 5  # out-of-fold predictions (from 2 lineages) below which no metric means anything


@dataclass
class Dataset:
    ids: list[str]
    columns: dict[str, np.ndarray]  # feature → (N,)
    y: np.ndarray  # (N,) RewardBench points
    lineage: np.ndarray  # (N,) str
    bucket: np.ndarray  # (N,) str, size bucket
    release: np.ndarray  # (N,) str, YYYY-MM

    def take(self, mask: np.ndarray) -> "Dataset":
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        return Dataset(
            ids=[self.ids[i] for i in idx],
            columns={k: v[idx] for k, v in self.columns.items()},
            y=self.y[idx],
            lineage=self.lineage[idx],
            bucket=self.bucket[idx],
            release=self.release[idx],
        )


def dataset(labels: list[LB.Label], snapshot: D.Snapshot, metadata: dict[str, dict], recipe: str, target: str, *,
            exclude=None) -> Dataset:
    """One recipe's labels for one target, joined with features, lineage and release date.

    A model the study's metadata does not know gets its lineage from its id (predictor.data.lineage: a
    family keyword of its name, else its organisation) and has no release date (it is never in a
    temporal test fold). A labelled base without the methods' inputs is refused (``labels.join_labels``),
    or left out and noted through ``exclude``.
    """
    ids, columns, targets = LB.join_labels(labels, snapshot, recipe, exclude=exclude)
    known = ~np.isnan(targets[target])
    ds = Dataset(
        ids=ids,
        columns=columns,
        y=targets[target],
        lineage=np.array([lineage_of(i, metadata)[0] for i in ids]),
        bucket=np.array([F.size_bucket(p) for p in columns["params_b"]]),
        release=np.array([metadata.get(i, {}).get("release", "") for i in ids]),
    )
    return ds.take(known)


def load_dataset(label_sources: list, recipe: str, target: str, feature_sources: list = (), *,
                 allow_partial: bool = False, on_duplicate: str = "error", note=lambda s: None) -> Dataset:
    labels = LB.read_labels(label_sources, allow_partial=allow_partial, on_duplicate=on_duplicate, note=note)
    if recipe not in {l.recipe for l in labels}:
        have = ", ".join(sorted({l.recipe for l in labels}))
        raise DataError(f"no labels for recipe {recipe!r} (the labels are of: {have}); pass --recipe {have.split(',')[0]} "
                        "or add labels of that recipe")
    snapshot = with_features(D.load_snapshot(), list(feature_sources), note=note)
    return dataset(labels, snapshot, D.load_model_metadata(), recipe, target)


def folds(ds: Dataset, split: str, seed: int = 0) -> list[np.ndarray]:
    """Test masks. Lineage: one fold per lineage. Temporal: release-ordered quarters, each predicted
    from all earlier releases only (the earliest quarter is never a test set). Random: 5 folds."""
    if split == "lineage":
        return [ds.lineage == g for g in sorted(set(ds.lineage.tolist()))]
    if split == "temporal":
        months = sorted(set(ds.release.tolist()))
        chunks = np.array_split(np.array(months), 4)
        return [np.isin(ds.release, chunk) for chunk in chunks[1:]]
    if split == "random":
        order = np.random.default_rng(seed).permutation(len(ds.y))
        return [np.isin(np.arange(len(ds.y)), part) for part in np.array_split(order, 5)]
    raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def require_folds(ds: Dataset, split: str, what: str, seed: int = 0) -> None:
    """DataError unless ``split`` predicts at least MIN_PREDICTED models out of fold, from 2 lineages."""
    n, lineages = len(ds.y), sorted(set(ds.lineage.tolist()))
    if split == "lineage" and len(lineages) < 2:
        raise DataError(f"{what}: all {n} labelled models are of one lineage ({lineages[0] if lineages else 'none'}); "
                        "holding a lineage out needs labelled models of at least 2 lineages")
    predicted = np.zeros(n, dtype=bool)
    for test in folds(ds, split, seed):
        if train_mask(ds, test, split).sum() >= MIN_TRAIN:
            predicted |= test
    k, groups = int(predicted.sum()), len(set(ds.lineage[predicted].tolist()))
    if k < MIN_PREDICTED or groups < 2:
        raise DataError(f"{what}: the {split} split predicts only {k} of {n} labelled models out of fold, from {groups} "
                        f"lineage(s) (a fold needs {MIN_TRAIN} models to train on); at least {MIN_PREDICTED} from 2 "
                        "lineages are needed: add labels")


def train_mask(ds: Dataset, test: np.ndarray, split: str) -> np.ndarray:
    if split == "temporal":
        first = min(ds.release[test].tolist())  # YYYY-MM strings sort in time order
        return ds.release < first
    return ~test


def out_of_fold(ds: Dataset, fit_predict, split: str, seed: int = 0) -> np.ndarray:
    """(N,) out-of-fold predictions (NaN for rows no fold predicts, e.g. the earliest releases)."""
    pred = np.full(len(ds.y), np.nan)
    for test in folds(ds, split, seed):
        train = train_mask(ds, test, split)
        if train.sum() < MIN_TRAIN or not test.any():
            continue
        pred[test] = fit_predict(ds.take(train), ds.take(test))
    return pred
