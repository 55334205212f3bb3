"""Predictions → a ranked list of candidates: intervals, top-k odds, drivers, gain over the default.

Predictions come from the ranking method the artifact chose for the recipe and target
(predictor.models.methods: the LightGBM predictor, ridge or a rule); the output names it.

- ``predicted``, interval, ``p_top_k``: from the predictive distribution fitted at fit time
  (predictor.models.predictive), the one ``plan`` uses: the method's prediction recalibrated (shrunk
  where its out-of-fold slope is below 1, bent at the top where the best-looking bases were
  over-predicted), a two-piece Student t error widened for missing inputs
  (predictor.models.uncertainty) and beyond the labelled range, siblings correlated by lineage.
  ``p_top_k`` is simulated jointly. When the slope of the labelled bases' measured scores on the
  method's predictions is within two lineage-jackknife standard errors of zero, ``caveat`` says so
  (above the table).
- ``drivers``: the three features that move the prediction most (LightGBM ``pred_contrib`` plus the
  ridge offset's terms; a linear method's terms), relative to the average labelled model.
- ``given_unused``: columns the file gives that the method does not read (said, never dropped silently).
- ``gain_vs_default``: predicted points over the study's default, the Llama-3.x of the same bucket.
- ``weights``: per-section predictions combined as a weighted mean; the distribution is refitted on
  the sections' stored levels and scores combined the same way.
- ``unrankable``: candidates with none of the method's inputs are not ranked (nothing to predict
  from) but listed after the ranking, each with the one command that produces its features
  (``predictor.data.candidates.split``); ``Ranking.check_ranked`` refuses a ranking of no candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from predictor.data import features as F
from predictor.data.candidates import GIVEN, MISSING, SNAPSHOT, Candidates, Unrankable, ids_only, split
from predictor.data.labels import SECTIONS
from predictor.data.lineage import lineage_of
from predictor.data.shipped import Snapshot, load_model_metadata
from predictor.errors import DataError
from predictor.models import predictive as P
from predictor.models.artifact import Bundle
from predictor.models.baselines import DEFAULT_LLAMA
from predictor.models.methods import POOL, RUNS, inputs, method_name
from predictor.models.uncertainty import MIN_INPUTS, input_groups, widening


def parse_weights(text: str) -> dict[str, float]:
    """'chat=1,chat_hard=2,...' → {section: weight}; unnamed sections weigh 0."""
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SECTIONS:
            raise DataError(f"--weights: {part.strip()!r} is not section=weight (sections: {', '.join(SECTIONS)})")
        try:
            weight = float(value)
        except ValueError:
            raise DataError(f"--weights: {value.strip()!r} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise DataError(f"--weights: {name}={value.strip()} must be a finite number >= 0")
        if name in weights:
            raise DataError(f"--weights: {name} is given twice")
        weights[name] = weight
    if sum(weights.values()) <= 0:
        raise DataError("--weights: all weights are zero; give at least one section a positive weight")
    return weights


@dataclass
class Objective:
    """What is predicted: one target, or a weighted mean of section targets; models and weights."""

    name: str
    parts: list[tuple[float, object]]  # (normalised weight, chosen method: RewardPredictor | LinearMethod)

    @classmethod
    def build(cls, bundle: Bundle, recipe: str, target: str, weights: dict[str, float] | None) -> "Objective":
        if not weights:
            return cls(target, [(1.0, bundle.get(recipe, target))])
        total = sum(weights.values())
        parts = [(w / total, bundle.get(recipe, s)) for s, w in weights.items() if w > 0]
        name = "weighted(" + ",".join(f"{s}={w:g}" for s, w in weights.items()) + ")"
        return cls(name, parts)

    def members(self, columns) -> np.ndarray:
        """(n_bags, N) ensemble predictions, points."""
        return sum(w * m.predict_members(columns) for w, m in self.parts)

    def contributions(self, columns) -> tuple[list[str], np.ndarray]:
        parts = [(w, *m.contributions(columns)) for w, m in self.parts]
        names = list(dict.fromkeys(n for _, part_names, _ in parts for n in part_names))
        out = np.zeros((len(next(iter(columns.values()))), len(names)))
        for w, part_names, contrib in parts:
            for j, n in enumerate(part_names):
                out[:, names.index(n)] += w * contrib[:, j]
        return names, out

    def calibration(self) -> P.Calibration | None:
        """The predictive distribution's fit (predictor.models.predictive): stored for one target; for a
        weighted objective, refitted from the parts' stored levels and scores (aligned by model id)."""
        cals = [m.calibration_ for _, m in self.parts]
        if any(c is None or "predictive" not in c for c in cals):
            return None
        if len(cals) == 1:
            return P.Calibration.from_json(cals[0]["predictive"])
        common = set(cals[0]["ids"]).intersection(*(c["ids"] for c in cals[1:]))
        ids = [i for i in cals[0]["ids"] if i in common]
        level, measured = np.zeros(len(ids)), np.zeros(len(ids))
        for (w, _), cal in zip(self.parts, cals):
            row = {i: k for k, i in enumerate(cal["ids"])}
            take = [row[i] for i in ids]
            level += w * np.asarray(cal["level"])[take]
            measured += w * np.asarray(cal["measured"])[take]
        lineage = dict(zip(cals[0]["ids"], cals[0]["lineage"]))
        return P.fit(level, measured, np.array([lineage[i] for i in ids]))

    @property
    def method(self) -> str:
        """The ranking method(s) the artifact chose for these targets."""
        return " + ".join(dict.fromkeys(method_name(m) for _, m in self.parts))

    def choice_notes(self) -> list[str]:
        """Which method ranks, and the out-of-fold figures it was chosen by."""
        out = []
        for _, m in self.parts:
            figures = ((m.calibration_ or {}).get("choice") or {}).get("methods")
            if figures:
                ranked = sorted(figures.items(), key=lambda kv: kv[1]["decision_regret"])
                others = ", ".join(f"{n} {f['decision_regret']:.2f}" for n, f in ranked)
                out.append(f"ranking by {method_name(m)}, chosen by leave-lineage-out as the simplest method within one "
                           f"standard error of the best (mean regret of training the predicted top {RUNS} of pools of "
                           f"{POOL}: {others} points)")
        return list(dict.fromkeys(out))[:1]

    def used_features(self) -> list[str]:
        names = list(dict.fromkeys(n for _, m in self.parts for n in inputs(m) + ["params_b"]))
        return [n for n in names if n not in F.DERIVED]

    def input_groups(self) -> list[list[str]]:
        """The method's inputs grouped as its widening is measured: a candidate needs ``MIN_INPUTS`` of them."""
        groups = []
        for _, m in self.parts:
            stored = ((m.calibration_ or {}).get("missing") or {}).get("groups")
            for group in stored or input_groups(inputs(m)):
                if group not in groups:
                    groups.append(group)
        return groups

    def widening(self, columns, ids: list[str]) -> np.ndarray:
        """(N,) interval widening for missing inputs: the largest over the parts (uncertainty.widening)."""
        return np.max([widening(m.calibration_, columns, ids) for _, m in self.parts], axis=0)


@dataclass
class Ranked:
    rank: int
    model_id: str
    predicted: float  # RewardBench points, 0-100
    low: float  # interval, points
    high: float
    p_top_k: float
    size_bucket: str
    params_b: float
    outside_labelled_range: bool  # params beyond the labelled models': an extrapolation
    drivers: list[dict]  # [{feature, contribution (points)}], largest |contribution| first
    gain_vs_default: dict | None  # {model, points} against the bucket's default Llama-3.x
    features: dict[str, list[str]]  # given | snapshot | missing → feature names the model uses
    given_unused: list[str] = field(default_factory=list)  # columns the file gives that the method does not use
    interval_widening: float = 1.0  # interval factor for missing inputs (uncertainty.widening)
    harness: dict[str, str] | None = None  # how lm-eval made its given scores (ingest's lm_eval_* cells), if it did

    def to_json(self) -> dict:
        def num(x: float, nd: int = 2):
            return None if math.isnan(x) or math.isinf(x) else round(x, nd)

        return {
            "rank": self.rank,
            "model_id": self.model_id,
            "predicted": num(self.predicted),
            "low": num(self.low),
            "high": num(self.high),
            "p_top_k": num(self.p_top_k, 3),
            "size_bucket": self.size_bucket,
            "params_b": num(self.params_b, 3),
            "outside_labelled_range": self.outside_labelled_range,
            "drivers": self.drivers,
            "gain_vs_default": self.gain_vs_default,
            "features": self.features,
            "given_unused": self.given_unused,
            "interval_widening": self.interval_widening,
            "harness": self.harness,
        }


@dataclass
class Ranking:
    recipe: str
    target: str
    method: str  # the ranking method the artifact chose (predictor.models.methods)
    level: float
    top_k: int
    candidates: list[Ranked]
    notes: list[str] = field(default_factory=list)  # for stderr
    unrankable: list[Unrankable] = field(default_factory=list)  # lack the method's inputs: how to get them
    caveat: str | None = None  # said above the table: the ranking has no skill beyond its noise out of fold

    def to_json(self) -> dict:
        return {
            "schema_version": 1,
            "recipe": self.recipe,
            "target": self.target,
            "method": self.method,
            "interval_level": self.level,
            "top_k": self.top_k,
            "caveat": self.caveat,
            "candidates": [c.to_json() for c in self.candidates],
            "unrankable": [u.to_json() for u in self.unrankable],
        }

    def check_ranked(self) -> None:
        """A ranking of no candidate is an error (exit 2) naming why; its unrankable list says what to run."""
        if not self.candidates:
            first = self.unrankable[0]
            more = f" and {len(self.unrankable) - 1} more" if len(self.unrankable) > 1 else ""
            raise DataError(f"no candidate can be ranked by {self.method}: {first.model_id!r}{more} lack all its inputs "
                            f"({', '.join(first.missing[:6])}); the commands listed produce them, e.g. {first.command}")

    def refuse_unrankable(self) -> None:
        """``--strict``: any candidate without the method's inputs is an error naming it and its command."""
        if self.unrankable:
            first = self.unrankable[0]
            more = f" (and {len(self.unrankable) - 1} more)" if len(self.unrankable) > 1 else ""
            raise DataError(f"{first.model_id!r} lacks every input of {self.method} ({', '.join(first.missing[:6])}): "
                            f"{first.reason}{more}; get them with: {first.command} (--strict refuses a partial ranking)")


def rank(
    candidates: Candidates,
    bundle: Bundle,
    *,
    recipe: str = "regression",
    target: str = "score",
    weights: dict[str, float] | None = None,
    top: int | None = None,
    max_params: float | None = None,
    level: float = 0.8,
    top_k: int = 3,
    snapshot: Snapshot | None = None,
    seed: int = 0,
    features_file: str = "features.csv",
) -> Ranking:
    """Predict every candidate that has what the method needs, sort by prediction (descending; ties by
    id), keep the top N; list the others with the command that writes their features to ``features_file``."""
    objective = Objective.build(bundle, recipe, target, weights)
    keep = np.ones(len(candidates), dtype=bool)
    notes = []
    if max_params is not None:  # nominal sizes: an 8.03B "-8B" model passes --max-params 8
        nominal = np.array([F.nominal_size(m, p) for m, p in zip(candidates.ids, candidates.columns["params_b"])])
        keep &= ~(nominal > max_params)
        if (unknown := int(np.isnan(nominal[keep]).sum())):
            notes.append(f"{unknown} candidate(s) with unknown size kept under --max-params")
    if not keep.any():
        raise DataError(f"no candidate has at most {max_params:g}B parameters (nominal size); raise --max-params")
    candidates = candidates.subset(np.flatnonzero(keep))
    rankable, unrankable = split(candidates, objective.input_groups(), MIN_INPUTS, features_file)
    if unrankable:
        notes.append(f"{len(unrankable)} candidate(s) lack every input of {objective.method}: listed after the ranking "
                     "with the command that produces their features")
    if rankable.size == 0:
        return Ranking(recipe=recipe, target=objective.name, method=objective.method, level=level, top_k=top_k,
                       candidates=[], notes=notes, unrankable=unrankable)
    params = candidates.columns["params_b"]
    rows = rankable
    columns = {k: v[rows] for k, v in candidates.columns.items()}
    members = np.clip(objective.members(columns), 0.0, 100.0)  # (n_bags, n) points
    predicted = members.mean(axis=0)
    notes += objective.choice_notes()
    kept_ids = [candidates.ids[i] for i in rows]
    wider = objective.widening(columns, kept_ids)  # (n,) >= 1 for missing inputs
    calibration = objective.calibration()
    caveat = None
    if calibration is None:
        notes.append("this predictor stores no predictive distribution: no intervals or top-k odds (refit it)")
        low, high, p_top = (np.full(len(rows), math.nan) for _ in range(3))
    else:
        predicted, low, high, p_top = uncertainty(calibration, predicted, wider, kept_ids, level, top_k, seed)
        caveat = no_skill_caveat(calibration, objective.method, top_k, len(rows))
    defaults = _default_predictions(objective, snapshot, calibration)
    labelled = bundle.metadata.get("labelled", {}).get(recipe, {})
    low_p, high_p = labelled.get("params_b_range", [math.nan, math.nan])
    used = objective.used_features()

    order = sorted(range(len(rows)), key=lambda j: (-predicted[j], candidates.ids[rows[j]]))
    if top is not None:
        order = order[:top]
    names, contrib = objective.contributions({k: v[order] for k, v in columns.items()})  # shown rows only
    out = []
    for shown, j in enumerate(order):
        i = rows[j]
        sources = {GIVEN: [], SNAPSHOT: [], MISSING: []}
        for name in used:
            provenance = candidates.provenance.get(name)  # None: a presence_* column the file lacks
            sources[provenance[i] if provenance else MISSING].append(name)
        unused = [n for n, p in candidates.provenance.items() if p[i] == GIVEN and n not in used]
        bucket = F.size_bucket(params[i])
        top3 = np.argsort(-np.abs(contrib[shown]), kind="mergesort")[:3]
        default_id = DEFAULT_LLAMA.get(bucket)
        out.append(
            Ranked(
                rank=shown + 1,
                model_id=candidates.ids[i],
                predicted=float(predicted[j]),
                low=float(max(low[j], 0.0)),
                high=float(min(high[j], 100.0)),
                p_top_k=float(p_top[j]),
                size_bucket=bucket,
                params_b=float(params[i]),
                outside_labelled_range=bool(params[i] > high_p or params[i] < low_p),
                drivers=[{"feature": names[t], "contribution": round(float(contrib[shown, t]), 2)} for t in top3],
                gain_vs_default=None if default_id is None or default_id not in defaults
                else {"model": default_id, "points": round(float(predicted[j] - defaults[default_id]), 2)},
                features=sources,
                given_unused=unused,
                interval_widening=round(float(wider[j]), 3),
                harness=candidates.harness[i] if candidates.harness else None,
            )
        )
    method_inputs = {n for _, m in objective.parts for n in inputs(m)}
    if (n_missing := sum(bool(method_inputs & set(c.features[MISSING])) for c in out)):
        notes.append(
            f"{n_missing} candidate(s) lack features the model uses (see 'missing'): their intervals are widened "
            f"(up to x{max(c.interval_widening for c in out):.2f}) by the lineage-out error measured with the same "
            "inputs masked"
        )
    if (n_sizeless := sum(math.isnan(c.params_b) for c in out)):
        notes.append(f"{n_sizeless} candidate(s) have no params_b: no size bucket and no gain over the default Llama-3.x")
    if (unused_names := sorted({n for c in out for n in c.given_unused})):
        notes.append(f"given but unused by {objective.method} for {recipe}/{objective.name}: {', '.join(unused_names)}")
    if (n_out := sum(c.outside_labelled_range for c in out)):
        notes.append(
            f"{n_out} candidate(s) lie outside the labelled size range {low_p:g}-{high_p:g}B: their predictions "
            "extrapolate (marked '*')"
        )
    return Ranking(recipe=recipe, target=objective.name, method=objective.method, level=level, top_k=top_k,
                   candidates=out, notes=notes, unrankable=unrankable, caveat=caveat)


def uncertainty(calibration: P.Calibration, raw: np.ndarray, wider: np.ndarray, ids: list[str], level: float,
                top_k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, low, high, P(top k)), (N,) each: the predictive distribution of the candidates
    (predictor.models.predictive), siblings correlated through their lineage (predictor.data.lineage)."""
    metadata = load_model_metadata()
    _, group = np.unique([lineage_of(i, metadata)[0] for i in ids], return_inverse=True)
    return P.rank_view(calibration, raw, wider, group, level, top_k, seed)


def no_skill_caveat(calibration: P.Calibration, method: str, top_k: int, n: int) -> str | None:
    """A line for above the table when the method's ranking is not distinguishable from noise out of fold."""
    if not calibration.no_skill:
        return None
    return (f"Caution: on the labelled bases, {method} does not rank beyond its noise (the slope of measured on predicted "
            f"scores is {calibration.skill_z:.1f} lineage-jackknife standard errors from zero, under 2): predictions are "
            f"shrunk towards the mean and P(top {top_k}) stays near {min(top_k, n)}/{n}.")


def _default_predictions(objective: Objective, snapshot: Snapshot | None,
                         calibration: P.Calibration | None) -> dict[str, float]:
    """Predictions for the default Llama-3.x models (from the snapshot, recalibrated as the candidates'), for
    the gain column."""
    if snapshot is None:
        return {}
    ids = [m for m in DEFAULT_LLAMA.values() if m in snapshot.index]
    if not ids:
        return {}
    table = ids_only(ids, snapshot)
    values = np.clip(objective.members(table.columns), 0.0, 100.0).mean(axis=0)
    if calibration is not None:
        values = calibration.mean(values)
    return dict(zip(ids, values.tolist()))

