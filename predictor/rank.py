"""Predictions → a ranked list of candidates with size buckets and feature provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from predictor import features as F
from predictor.artifact import Bundle
from predictor.candidates import GIVEN, MISSING, SNAPSHOT, Candidates


@dataclass
class Ranked:
    rank: int
    model_id: str
    predicted: float  # RewardBench points, 0-100
    size_bucket: str
    params_b: float
    outside_labelled_range: bool  # params beyond the labelled models': an extrapolation
    features: dict[str, list[str]]  # given | snapshot | missing → feature names the model uses

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "model_id": self.model_id,
            "predicted": round(self.predicted, 2),
            "size_bucket": self.size_bucket,
            "params_b": None if math.isnan(self.params_b) else self.params_b,
            "outside_labelled_range": self.outside_labelled_range,
            "features": self.features,
        }


@dataclass
class Ranking:
    recipe: str
    target: str
    candidates: list[Ranked]
    notes: list[str] = field(default_factory=list)  # for stderr

    def to_json(self) -> dict:
        return {
            "schema_version": 1,
            "recipe": self.recipe,
            "target": self.target,
            "candidates": [c.to_json() for c in self.candidates],
        }


def rank(
    candidates: Candidates,
    bundle: Bundle,
    *,
    recipe: str = "regression",
    target: str = "score",
    top: int | None = None,
    max_params: float | None = None,
) -> Ranking:
    """Predict every candidate, sort by prediction (descending; ties by id), keep the top N."""
    model = bundle.get(recipe, target)
    predicted = np.clip(model.predict(candidates.columns), 0.0, 100.0)  # (N,) points
    params = candidates.columns["params_b"]
    low, high = bundle.metadata.get("labelled", {}).get(recipe, {}).get("params_b_range", [math.nan, math.nan])
    used = list(dict.fromkeys(model.feature_names_in_ + model.offset_.names + ("params_b",)))
    used = [name for name in used if name not in F.DERIVED]
    notes = []
    keep = np.ones(len(candidates), dtype=bool)
    if max_params is not None:
        keep &= ~(params > max_params)
        unknown = int(np.isnan(params[keep]).sum())
        if unknown:
            notes.append(f"{unknown} candidate(s) with unknown size kept under --max-params")
    order = sorted(np.flatnonzero(keep), key=lambda i: (-predicted[i], candidates.ids[i]))
    if top is not None:
        order = order[:top]
    out = []
    for r, i in enumerate(order, start=1):
        sources = {GIVEN: [], SNAPSHOT: [], MISSING: []}
        for name in used:
            sources[candidates.provenance[name][i]].append(name)
        out.append(
            Ranked(
                rank=r,
                model_id=candidates.ids[i],
                predicted=float(predicted[i]),
                size_bucket=F.size_bucket(params[i]),
                params_b=float(params[i]),
                outside_labelled_range=bool(params[i] > high or params[i] < low),
                features=sources,
            )
        )
    n_out = sum(c.outside_labelled_range for c in out)
    if n_out:
        notes.append(
            f"{n_out} candidate(s) lie outside the labelled size range {low:g}-{high:g}B: their predictions "
            "extrapolate (marked '*')"
        )
    return Ranking(recipe=recipe, target=target, candidates=out, notes=notes)
