"""How much would `evaluate --budget`'s figures move with other labelled bases? A delete-one-lineage jackknife.

`evaluate --budget` brackets its figures by a bootstrap over pools: the simulation's sampling error only,
since every pool is drawn from the same ~40 labelled bases. Here the whole simulation is repeated without
each lineage in turn — on the same pools, less that lineage's members (so a pool shrinks by its members
there), with every fit, choice and calibration redone outside each pool — and the spread of the figures
gives a jackknife standard error that includes which lineages happen to be labelled.

Run: .venv/bin/python benchmarks/budget_lineage_jackknife.py [--recipe regression] [--pools 100] [--runs 3]
Prints, after --runs runs: mean regret per policy and the paired differences to mean-score order, each with
its 95% pool-bootstrap bracket and a 95% jackknife bracket (estimate ± 1.96 jackknife standard errors).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from predictor.data import dataset as DS
from predictor.data import shipped as D
from predictor.evals import budget as BU

BASE = "mean score order"


def figures(result, runs: int) -> dict[str, float]:
    out = {p: float(r[:, runs - 1].mean()) for p, r in result.regret.items()}
    out.update({f"{p} − {BASE}": out[p] - out[BASE] for p in ("plan", "static", "LightGBM top-k")})
    return out


def pool_bracket(result, runs: int, key: str, n_boot: int = 2000) -> list[float]:
    policy, _, other = key.partition(" − ")
    values = result.regret[policy][:, runs - 1] - (result.regret[other][:, runs - 1] if other else 0.0)
    idx = np.random.default_rng(0).integers(0, len(values), size=(n_boot, len(values)))
    return [round(float(q), 3) for q in np.quantile(values[idx].mean(axis=1), [0.025, 0.975])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="regression")
    parser.add_argument("--pools", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ds = DS.load_dataset([D.benchmarks_dir() / D.LABELS_FILE], args.recipe, "score")
    BU.check_sizes(ds.lineage, args.runs, 12)
    pools = BU.draw_pools(len(ds.y), 12, args.pools, args.seed)
    start = time.perf_counter()
    full = BU.simulate(ds, budget=args.runs, pools=pools, n_boot=0)
    lineages = sorted(set(ds.lineage.tolist()))
    reps = []
    for g in lineages:
        keep = np.flatnonzero(ds.lineage != g)
        new = np.full(len(ds.y), -1)
        new[keep] = np.arange(len(keep))
        shrunk = [new[p][new[p] >= 0] for p in pools]  # the same pools, less lineage g
        reps.append(figures(BU.simulate(ds.take(keep), budget=args.runs, pools=shrunk, n_boot=0), args.runs))
    est = figures(full, args.runs)
    g = len(lineages)
    out = {"recipe": args.recipe, "pools": args.pools, "runs": args.runs, "lineages": g,
           "seconds": round(time.perf_counter() - start, 1), "figures": {}}
    for key, value in est.items():
        values = np.array([r[key] for r in reps])
        se = float(np.sqrt((g - 1) / g * np.sum((values - values.mean()) ** 2)))
        out["figures"][key] = {"estimate": round(value, 3), "pool_bootstrap_ci95": pool_bracket(full, args.runs, key),
                               "jackknife_se": round(se, 3),
                               "jackknife_ci95": [round(value - 1.96 * se, 3), round(value + 1.96 * se, 3)]}
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
