"""``basepick check``: validate a new benchmark dump and show what it would change, as a CI gate.

A dump is an Open LLM Leaderboard v2 CSV (the shipped snapshot's format), a basepick feature CSV
(``model_id`` + canonical columns) or lm-evaluation-harness results (a folder or one results JSON, read
by ``predictor.data.ingest``). It is compared with the current features — the shipped snapshot, or the
``--against`` dump laid over it — and the gate fails (exit 1, after the report) when:

* a value is invalid: not a number, not finite, outside 0-100 (a v2 column holding fractions says so),
  a leaderboard row whose normalised score disagrees with the normalisation of its raw score, or an id
  that is not a model id;
* rows conflict: one model with several rows that the leaderboard row rule cannot tell apart (or two
  feature rows) and different values;
* a leaderboard v2 dump lacks a score cell or drops more than ``max_removed`` of the current models;
* drift: more than ``max_changed`` of the models both versions have moved by more than ``tolerance``
  points on one benchmark (defaults: 2 points, 1%: a re-run moves a model by ~1 point; a parsing or
  scale change moves many by more);
* regression: the leave-one-lineage-out Spearman of the predictor on the labelled models drops by more
  than ``eval_drop`` (default 0.05) when they get the dump's features.

It also reports models added and removed, missing benchmarks, ids the snapshot does not know, the
top-k of each size bucket (<3B, 3-6B, >=6B) before and after, ranked with the shipped predictor, and
where the dump's numbers came from: for lm-eval results and the feature rows ``basepick ingest``
wrote, how lm-eval ran them (version, backend, dtype, chat template, few-shot as turns, shots, task
versions) and whether that matches the leaderboard's settings (``provenance``; differences are notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predictor.data import features as F
from predictor.data import harness_settings as HS
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.data.dump import BENCHMARKS, FEATURES, HARNESS, V2_CSV, Dump, load_dump
from predictor.errors import BasepickError

SCHEMA_VERSION = 1
BUCKETS = ("<3B", "3-6B", ">=6B")
SHOWN = 10  # examples kept per list in the report


@dataclass(frozen=True)
class Tolerance:
    points: float = 2.0  # a benchmark value may move this many points without counting as changed
    max_changed: float = 0.01  # share of common models per benchmark allowed to move more
    max_removed: float = 0.01  # share of current models a full leaderboard dump may drop
    eval_drop: float = 0.05  # allowed drop of leave-one-lineage-out Spearman


# --------------------------------------------------------------------------------------------------
# Comparing and gating


def overlay(base: D.Snapshot, dump: Dump) -> D.Snapshot:
    """The snapshot with the dump's known values laid over it (new models appended)."""
    ids = base.ids + [m for m in dump.ids if m not in base.index]
    index = {m: i for i, m in enumerate(ids)}
    at = np.array([index[m] for m in dump.ids], dtype=int)
    columns = {}
    for name in F.SPECS:
        col = np.concatenate([base.columns[name], np.full(len(ids) - len(base.ids), np.nan)])
        if name in dump.columns:
            new = dump.columns[name]
            spec = F.SPECS[name]
            with np.errstate(invalid="ignore"):
                known = (new >= spec.low) & (new <= spec.high)  # invalid values never reach the predictor
            if name == "params_b" and dump.kind != FEATURES:
                known &= np.isnan(col[at])  # the study's and the snapshot's sizes stay authoritative
            col[at[known]] = new[known]
        columns[name] = col
    if dump.kind == V2_CSV:  # a full leaderboard export: a model it lacks has no v2 scores any more
        gone = np.array([index[m] for m in sorted(set(base.v2_ids) - set(dump.ids))], dtype=int)
        for name in F.V2_SCORES:
            columns[name][gone] = np.nan
    F.add_derived(columns)
    return D.Snapshot(ids=ids, columns=columns, v2_ids=list(dump.ids) if dump.kind == V2_CSV else base.v2_ids)


def check(dump_path: str | Path, *, against: str | Path | None = None, tolerance: Tolerance = Tolerance(),
          top_k: int = 5, recipe: str = "regression") -> dict:
    """Validate ``dump_path``, diff it against the current features and return the report (a dict).

    ``report["failures"]`` lists why the gate fails (empty when it passes).
    """
    dump = load_dump(dump_path)
    shipped = D.load_snapshot()
    failures: list[str] = []
    notes = list(dump.notes)
    if against is None:
        before, pool_before, full_before, against_desc = shipped, list(shipped.v2_ids), True, {"path": "shipped", "kind": V2_CSV}
    else:
        base = load_dump(against)
        if base.invalid or base.conflicts:
            notes.append(f"--against {against}: {len(base.invalid)} invalid value(s), {len(base.conflicts)} conflict(s)")
        before = overlay(shipped, base)
        full_before = base.kind == V2_CSV
        pool_before = list(base.ids) if full_before else sorted(set(shipped.v2_ids) | set(base.ids))
        against_desc = {"path": str(against), "kind": base.kind, "models": len(base.ids)}
    after = overlay(before, dump)
    full_after = dump.kind == V2_CSV
    pool_after = list(dump.ids) if full_after else sorted(set(pool_before) | set(dump.ids))

    validation = _validation(dump, shipped, failures)
    if dump.sizes:
        first = dump.sizes[0]
        notes.append(f"{len(dump.sizes)} model(s) record params_b under {F.NAME_SIZE_RATIO:.0%} of the size their name "
                     f"states, e.g. {first['model_id']} {first['params_b']:g}B (name: {first['stated']:g}B), likely "
                     "quantised exports' counts" + ("; the stated size is used" if dump.kind == V2_CSV else ""))
    diff = _diff(dump, before, pool_before, full_before and full_after, tolerance, failures)
    report = {
        "schema_version": SCHEMA_VERSION,
        "dump": {"path": str(dump_path), "kind": dump.kind, "rows": dump.rows, "models": len(dump.ids)},
        "against": against_desc,
        "tolerance": {"points": tolerance.points, "max_changed": tolerance.max_changed,
                      "max_removed": tolerance.max_removed, "eval_drop": tolerance.eval_drop},
        "validation": validation,
        "provenance": _provenance(dump),
        "diff": diff,
        "top_k": _top_k(before, pool_before, after, pool_after, top_k, recipe),
        "evaluation": _evaluation(before, after, recipe, tolerance, failures, notes),
        "notes": notes,
        "failures": failures,
        "passed": not failures,
    }
    return report


def _validation(dump: Dump, shipped: D.Snapshot, failures: list[str]) -> dict:
    if dump.invalid:
        first = dump.invalid[0]
        failures.append(f"{len(dump.invalid)} invalid value(s), e.g. row {first['row']} {first['column']}: {first['problem']}")
    if dump.conflicts:
        first = dump.conflicts[0]
        failures.append(f"{len(dump.conflicts)} model(s) with conflicting rows, e.g. {first['model_id']} "
                        f"(rows {first['rows'][0]} and {first['rows'][1]} differ in {', '.join(first['columns'])})")
    missing = {}
    for name in F.V2_SCORES if dump.kind == V2_CSV else BENCHMARKS:
        col = dump.columns.get(name)
        n = len(dump.ids) if col is None else int(np.isnan(col).sum())
        if n:
            missing[name] = n
    unknown = [m for m in dump.ids if m not in shipped.index]
    return {
        "params_contradicting_name": dump.sizes[:SHOWN], "n_params_contradicting_name": len(dump.sizes),
        "invalid": dump.invalid[:SHOWN], "n_invalid": len(dump.invalid),
        "conflicts": dump.conflicts[:SHOWN], "n_conflicts": len(dump.conflicts),
        "duplicate_rows": dump.duplicates,
        "missing": missing,  # benchmark → number of the dump's models without it
        "unknown_ids": unknown[:SHOWN], "n_unknown_ids": len(unknown),
    }


def _provenance(dump: Dump) -> dict:
    """Where the dump's numbers came from: the source, and how lm-eval ran each row that says so."""
    source = {V2_CSV: "an Open LLM Leaderboard v2 export", HARNESS: "lm-evaluation-harness results",
              FEATURES: "a feature table"}[dump.kind]
    differs = [p for p in dump.provenance if p.get("lm_eval_settings", HS.MATCHES) != HS.MATCHES]
    return {"source": source, "lm_eval_rows": len(dump.provenance), "unlike_leaderboard": len(differs),
            "rows": dump.provenance[:SHOWN]}


def _diff(dump: Dump, before: D.Snapshot, pool: list[str], full: bool, tol: Tolerance, failures: list[str]) -> dict:
    in_pool = set(pool)  # one basis: the current pool; in both + added = the dump, in both + removed = the pool
    common = [m for m in dump.ids if m in in_pool]
    added = [m for m in dump.ids if m not in in_pool]
    removed = sorted(in_pool - set(dump.ids)) if full else []
    if full and len(removed) > tol.max_removed * len(pool):
        failures.append(f"{len(removed)} of {len(pool)} current models are missing from the dump "
                        f"(allowed {tol.max_removed:.0%}): a truncated export?")
    position = {m: i for i, m in enumerate(dump.ids)}
    known = [m for m in dump.ids if m in before.index]  # drift: every model with values before, pooled or not
    old_at = np.array([before.index[m] for m in known], dtype=int)
    new_at = np.array([position[m] for m in known], dtype=int)
    changes = {}
    for name in BENCHMARKS:
        if name not in dump.columns or not known:
            continue
        old, new = before.columns[name][old_at], dump.columns[name][new_at]  # (C,) points
        both = ~np.isnan(old) & ~np.isnan(new)
        delta = (new - old)[both]
        moved = np.abs(delta) > tol.points
        lost = int((~np.isnan(old) & np.isnan(new)).sum())
        order = np.argsort(-np.abs(delta), kind="mergesort")[:SHOWN]
        ids = np.array(known)[both]
        share = float(moved.mean()) if both.any() else 0.0
        changes[name] = {
            "compared": int(both.sum()), "changed": int(moved.sum()), "share": round(share, 4),
            "max_abs_change": round(float(np.abs(delta).max()), 3) if delta.size else 0.0,
            "lost": lost,
            "largest": [{"model_id": str(ids[k]), "before": round(float(old[both][k]), 3),
                         "after": round(float(new[both][k]), 3)} for k in order if moved[k]],
        }
        if share > tol.max_changed:
            failures.append(f"{name}: {int(moved.sum())} of {int(both.sum())} models ({share:.1%}) moved by more than "
                            f"{tol.points:g} points (max {float(np.abs(delta).max()):.1f}); allowed {tol.max_changed:.0%}")
    return {"dump_models": len(dump.ids), "current_models": len(pool), "removals_counted": full,
            "common": len(common), "added": added[:SHOWN], "n_added": len(added),
            "removed": removed[:SHOWN], "n_removed": len(removed), "changes": changes}


def _predict(snapshot: D.Snapshot, ids: list[str], recipe: str, bundle) -> dict[str, tuple[float, str]]:
    """model id → (predicted RewardBench score, size bucket) with the shipped predictor."""
    from predictor.data.candidates import ids_only

    if not ids:
        return {}
    table = ids_only(ids, snapshot)
    predicted = bundle.get(recipe, "score").predict(table.columns)
    return {m: (float(p), F.size_bucket(s)) for m, p, s in zip(ids, predicted, table.columns["params_b"])}


def _tops(predictions: dict[str, tuple[float, str]], k: int) -> dict[str, list[str]]:
    tops: dict[str, list[str]] = {b: [] for b in BUCKETS}
    for model_id, (_, bucket) in sorted(predictions.items(), key=lambda kv: (-kv[1][0], kv[0])):
        if bucket in tops and len(tops[bucket]) < k:
            tops[bucket].append(model_id)
    return tops


def _unchanged(before: D.Snapshot, after: D.Snapshot, ids: list[str]) -> set[str]:
    """The ids whose every feature is the same in both snapshots (a prediction depends on its row only)."""
    ids = [m for m in ids if m in before.index and m in after.index]
    a = np.array([before.index[m] for m in ids], dtype=int)
    b = np.array([after.index[m] for m in ids], dtype=int)
    same = np.ones(len(ids), dtype=bool)
    for name in F.SPECS:
        x, y = before.columns[name][a], after.columns[name][b]
        same &= (x == y) | (np.isnan(x) & np.isnan(y))
    return {m for m, s in zip(ids, same) if s}


def _top_k(before, pool_before, after, pool_after, k: int, recipe: str) -> dict:
    from predictor.models import artifact

    bundle = artifact.load(D.shipped_predictor_dir())
    old_pred = _predict(before, pool_before, recipe, bundle)
    new_pred = _predict(after, pool_after, recipe, bundle)
    old, new = _tops(old_pred, k), _tops(new_pred, k)
    buckets = {
        b: {"before": old[b], "after": new[b], "entered": [m for m in new[b] if m not in old[b]],
            "left": [m for m in old[b] if m not in new[b]]}
        for b in BUCKETS
    }
    return {"k": k, "recipe": recipe, "target": "score", "buckets": buckets,
            "changed": any(v["entered"] or v["left"] for v in buckets.values())}


def _evaluation(before, after, recipe: str, tol: Tolerance, failures: list[str], notes: list[str]) -> dict:
    """Leave-one-lineage-out selection quality on the labelled models with the old and the new features."""
    from predictor.data import dataset as DS
    from predictor.evals import evaluate as E
    from predictor.models import metrics as M
    from predictor.models.model import ModelConfig

    labels, metadata = LB.read_labels([D.benchmarks_dir() / D.LABELS_FILE]), D.load_model_metadata()
    old_ds = DS.dataset(labels, before, metadata, recipe, "score", exclude=lambda m: notes.append(f"evaluation before: {m}"))
    touched = sorted(set(old_ds.ids) - _unchanged(before, after, old_ds.ids))
    method = E.predictor_method(ModelConfig())
    keys = ("spearman", "regret@1/bucket", "coverage@5", "mae")

    def run(ds):
        m = M.selection_metrics(DS.out_of_fold(ds, method, "lineage"), ds.y, ds.bucket)
        return {key: None if math.isnan(m[key]) else round(float(m[key]), 4) for key in keys}

    old = run(old_ds)
    try:  # the labelled models' features did not change: the evaluation would not either
        new = run(DS.dataset(labels, after, metadata, recipe, "score",
                             exclude=lambda m: notes.append(f"evaluation with the dump: {m}"))) if touched else dict(old)
    except BasepickError as exc:
        failures.append(f"the lineage-held-out evaluation cannot be fitted with the dump's features ({exc})")
        new = {key: None for key in keys}
    drop = old["spearman"] - new["spearman"] if None not in (old["spearman"], new["spearman"]) else 0.0
    if drop > tol.eval_drop:
        failures.append(f"leave-one-lineage-out Spearman ({recipe}) drops from {old['spearman']:.3f} to "
                        f"{new['spearman']:.3f} with the dump's features (allowed drop {tol.eval_drop:g})")
    return {"split": "lineage", "recipe": recipe, "labelled_models": len(old_ds.ids),
            "labelled_models_changed": len(touched), "before": old, "after": new}
