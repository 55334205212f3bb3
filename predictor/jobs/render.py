"""Render results for stdout: a rich table, JSON (with schema_version) or CSV. Results only."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys

from predictor.data.harness_settings import describe
from predictor.jobs.rank import Ranking

FORMATS = ("table", "json", "csv")


def console(file=None):
    """A rich console on stdout; off a terminal plain text, $COLUMNS wide (rich reads it) or else 140.
    A reader that goes away (``| head``) raises BrokenPipeError to the caller, as a plain write would:
    rich's own handling exits with code 1, which reads as a failed gate."""
    from rich.console import Console

    class ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    file = file or sys.stdout
    tty = file.isatty()
    width = None if tty or os.environ.get("COLUMNS", "").isdigit() else 140
    return ResultConsole(file=file, width=width, no_color=not tty, highlight=False, soft_wrap=False)


def to_json(payload: dict) -> str:
    """One JSON document per run. Compact: json's C encoder is ~10x faster than its indenting one,
    which matters for `rank --pool leaderboard` (4,497 candidates); pipe through `jq` to read it."""
    return json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n"


def _provenance(features: dict[str, list[str]], harness: dict[str, str] | None = None) -> str:
    parts = []
    if features["given"]:
        parts.append(f"given {len(features['given'])}")
    if features["snapshot"]:
        parts.append(f"snapshot {len(features['snapshot'])}")
    if features["missing"]:
        parts.append("missing " + ",".join(features["missing"]))
    if harness:
        parts.append(describe(harness))
    return " · ".join(parts)


def _drivers(drivers: list[dict]) -> str:
    return ", ".join(f"{d['feature']} {d['contribution']:+.1f}" for d in drivers)


def ranking_table(ranking: Ranking, file=None) -> None:
    """The ranked candidates as two tables keyed by rank, legible at 80 columns: the decision (model id,
    prediction, interval, P(top k)) first, titled with the ranking method the artifact chose, then per
    candidate the gain over the default, size, drivers and feature sources; a legend explains every column.
    Candidates the method cannot rank follow, each with the command that produces their features."""
    from rich import box
    from rich.table import Table

    out = console(file)
    if not ranking.candidates:
        unrankable_list(ranking, out)
        return

    def table(title: str, columns: list[tuple[str, str]]) -> Table:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for name, justify in columns:
            t.add_column(name, justify=justify, overflow="fold")
        return t

    main = table(f"Predicted RewardBench {ranking.target}, {ranking.recipe} recipe\nranked by {ranking.method}",
                 [("#", "right"), ("model", "left"), ("predicted", "right"), ("interval", "right"),
                  (f"P(top {ranking.top_k})", "right")])
    details = table("By rank: vs Llama, size, drivers, features",
                    [("#", "right"), ("vs Llama", "right"), ("size", "left"), ("drivers (points)", "left"),
                     ("features", "left")])
    for c in ranking.candidates:
        main.add_row(str(c.rank), c.model_id, f"{c.predicted:.1f}" + ("*" if c.outside_labelled_range else ""),
                     "" if math.isnan(c.low) else f"{c.low:.1f}–{c.high:.1f}",
                     "" if math.isnan(c.p_top_k) else f"{c.p_top_k:.2f}")
        details.add_row(str(c.rank), "" if c.gain_vs_default is None else f"{c.gain_vs_default['points']:+.1f}",
                        "?" if math.isnan(c.params_b) else f"{c.params_b:g}B",
                        _drivers(c.drivers), _provenance(c.features, c.harness))
    if ranking.caveat:
        out.print(ranking.caveat)
    out.print(main)
    out.print(details)
    for line in rank_legend(ranking):
        out.print(line)
    unrankable_list(ranking, out)


def unrankable_list(ranking: Ranking, out) -> None:
    """The candidates the method cannot rank: why, and the command that gets their features (unwrapped, so
    that it can be copied)."""
    if not ranking.unrankable:
        return
    out.print(f"Not ranked: {len(ranking.unrankable)} candidate(s) without any input of {ranking.method} "
              f"({', '.join(ranking.unrankable[0].missing)}). Each command runs lm-evaluation-harness with the "
              "Open LLM Leaderboard v2 settings and ingests the results (examples/lm-eval/README.md); then rank again.")
    for u in ranking.unrankable:
        out.print(f"{u.model_id}: {u.reason}; chat template {'yes' if u.chat_template else 'no'} ({u.chat_template_why})",
                  markup=False, highlight=False)
        out.print(f"  {u.command}", markup=False, highlight=False, soft_wrap=True)


def rank_legend(ranking: Ranking) -> list[str]:
    level, k = f"{ranking.level:.0%}", ranking.top_k
    return [
        "predicted: RewardBench points (0-100) of a reward model trained from this base, by the ranking method "
        "named in the title (chosen per recipe and target out of fold), recalibrated on its out-of-fold errors; * its "
        "size is outside the labelled models' sizes, so the prediction extrapolates.",
        f"interval: {level} prediction interval of the predictive distribution fitted to the method's "
        "leave-one-lineage-out errors (the prediction is its mean, shrunk where those errors show the method's top "
        "over-predicted), wider for a candidate that lacks inputs the method uses or lies beyond the labelled "
        f"predictions. P(top {k}): probability of being among the {k} best candidates, simulated jointly with "
        "siblings of a lineage correlated.",
        "vs Llama: predicted points over the study's default, the Llama-3.x of the same size bucket (<3B, 3-6B, "
        ">=6B). size: parameters. drivers: the features that move the ranking method's own prediction (before its "
        "recalibration) most, in points (mean_v2: mean of the six "
        "leaderboard v2 scores; log_params: log of the parameter count). features: where the inputs came from "
        "(given: your file; snapshot: the shipped leaderboards; missing: unknown).",
    ]


def ranking_csv(ranking: Ranking) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["rank", "model_id", "predicted", "low", "high", "p_top_k", "size_bucket", "params_b",
         "outside_labelled_range", "gain_vs_default", "drivers", "given", "snapshot", "missing", "harness",
         "status", "command"]
    )
    for c in ranking.candidates:
        row = c.to_json()
        writer.writerow(
            [row["rank"], row["model_id"], row["predicted"], row["low"], row["high"], row["p_top_k"],
             row["size_bucket"], "" if row["params_b"] is None else row["params_b"],
             str(row["outside_labelled_range"]).lower(),
             "" if row["gain_vs_default"] is None else row["gain_vs_default"]["points"], _drivers(c.drivers)]
            + [";".join(c.features[k]) for k in ("given", "snapshot", "missing")]
            + [describe(c.harness) if c.harness else "", "ranked", ""]
        )
    for u in ranking.unrankable:  # status "unrankable": the JSON's "unrankable" list, one row each
        writer.writerow(["", u.model_id] + [""] * 11 + [";".join(u.missing), "", "unrankable", u.command])
    return buf.getvalue()


EVAL_COLUMNS = (("spearman", "ρ"), ("kendall", "τ"), ("mae", "MAE"), ("coverage@3", "cov@3"), ("coverage@5", "cov@5"),
                ("coverage@10", "cov@10"), ("regret@1/bucket", "regret@1/bkt"), ("best_of_3_regret/bucket", "best3/bkt"),
                ("regret@1/pooled", "regret@1"))


METRIC_LEGEND = (
    "ρ, τ: Spearman and Kendall rank correlation of predicted and measured scores (1 = the same order). MAE: mean "
    "absolute error, points. cov@k: share of the measured top k found in the predicted top k. regret@1/bkt: points "
    "lost by taking the predicted best instead of the measured best, inside each size bucket (<3B, 3-6B, >=6B), "
    "averaged; best3/bkt: the same for the best of the predicted top 3; regret@1: over all models pooled."
)


def evaluation_table(ev, file=None) -> None:
    """Methods × metrics with lineage-bootstrap 95% intervals, then the verdict."""
    from rich.table import Table

    table = Table(
        title=f"RewardBench {ev.target}, {ev.recipe} recipe — out of fold, split={ev.split}, {ev.n} models "
        f"(95% lineage-bootstrap intervals below each value)",
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for _, label in EVAL_COLUMNS:
        table.add_column(label, justify="right")
    for m in ev.methods:
        cells = []
        for key, _ in EVAL_COLUMNS:
            value = m.metrics.get(key, math.nan)
            if math.isnan(value):
                cells.append("—")
                continue
            lo, hi = m.low.get(key, math.nan), m.high.get(key, math.nan)
            cells.append(f"{value:.2f}\n{lo:.2f}–{hi:.2f}" if not math.isnan(lo) else f"{value:.2f}")
        table.add_row(m.name, *cells)
    out = console(file)
    out.print(table)
    out.print(f"Prediction intervals ({ev.interval_level:.0%} nominal) of the method fit chooses, chosen and calibrated "
              f"inside each training fold: empirical coverage {ev.interval_coverage:.0%} out of fold.")
    for line in ev.verdict:
        out.print(line)
    out.print(METRIC_LEGEND)
    if ev.budget is not None:
        budget_table(ev, out)
    if ev.calibration is not None:
        calibration_table(ev, out)


def artifacts_table(summaries: list[dict], file=None) -> None:
    """Per artifact: identity and inputs, then one row per model with fit-time leave-lineage-out quality."""
    from rich.table import Table

    out = console(file)

    def fmt(value):
        return "—" if value is None else f"{value:.2f}"

    for s in summaries:
        labels = ", ".join(f"{d['file']} ({d['sha256'][:8]})" for d in (s["data"] or {}).get("labels", []))
        table = Table(
            title=f"{s['path']}\nversion {s['version'] or '—'} · parent {s['parent'] or '—'} · created "
            f"{s['created'] or '—'} · basepick {s['basepick_version']} · seed {s['seed']}\nlabels: {labels}",
            title_justify="left",
        )
        for name, justify in (("model", "left"), ("method", "left"), ("labelled", "right"), ("features", "right"),
                              ("ρ", "right"), ("ρ mean score", "right"), ("MAE", "right"), ("regret@1/bkt", "right")):
            table.add_column(name, justify=justify)
        for key, m in s["models"].items():
            cv = m["lineage_cv"] or {}
            table.add_row(key, m["method"], str(m["labelled_models"]), str(len(m["features"])), fmt(cv.get("spearman")),
                          fmt(m["mean_score_spearman"]), fmt(cv.get("mae")), fmt(cv.get("regret@1/bucket")))
        out.print(table)
    out.print("Measured at fit time, leave-one-lineage-out. ρ: Spearman rank correlation of predicted and measured "
              "scores; ρ mean score: the same for ranking by mean leaderboard v2 score (the rule to beat); MAE: mean "
              "absolute error, points; regret@1/bkt: points lost by taking the predicted best instead of the measured "
              "best inside each size bucket, averaged.")


def check_report(report: dict, file=None) -> None:
    """`basepick check`'s report as plain rich tables (JSON with --format json carries every field)."""
    from rich.table import Table

    out = console(file)
    d, v, diff = report["dump"], report["validation"], report["diff"]
    out.print(f"basepick check: {d['path']} ({d['kind']}, {d['models']} models from {d['rows']} rows) "
              f"against {report['against']['path']}")
    out.print(f"validation: {v['n_invalid']} invalid value(s), {v['n_conflicts']} conflict(s), "
              f"{v['duplicate_rows']} duplicate row(s), {v['n_unknown_ids']} id(s) new to the snapshot, "
              f"{v['n_params_contradicting_name']} size(s) contradicting the name")
    for item in v["invalid"]:
        out.print(f"  row {item['row']} {item['model_id'][:50]} {item['column']}: {item['problem']}")
    p = report["provenance"]
    out.print(f"source: {p['source']}" + (f"; {p['lm_eval_rows']} row(s) say how lm-eval ran them, "
                                          f"{p['unlike_leaderboard']} unlike the leaderboard's settings"
                                          if p["lm_eval_rows"] else ""), markup=False)
    for row in p["rows"]:
        out.print(f"  {row['model_id'][:50]}: {describe(row)}", markup=False)
    if v["missing"]:
        out.print("missing benchmarks: " + ", ".join(f"{k} {n}" for k, n in v["missing"].items()))
    basis = (f"current pool {diff['current_models']} = in both + removed" if diff["removals_counted"]
             else "removals are counted for full leaderboard dumps only")
    out.print(f"models: {diff['common']} in both, {diff['n_added']} added, {diff['n_removed']} removed "
              f"(dump {diff['dump_models']} = in both + added; {basis})")
    for item in v["params_contradicting_name"]:
        out.print(f"  row {item['row']} {item['model_id'][:50]} params_b {item['params_b']:g}B: the name states "
                  f"{item['stated']:g}B")
    if diff["changes"]:
        t = Table(title=f"Changes beyond {report['tolerance']['points']:g} points", title_justify="left")
        for col, justify in (("benchmark", "left"), ("compared", "right"), ("changed", "right"),
                             ("share", "right"), ("max |Δ|", "right"), ("lost", "right")):
            t.add_column(col, justify=justify)
        for name, c in diff["changes"].items():
            t.add_row(name, str(c["compared"]), str(c["changed"]), f"{c['share']:.1%}", f"{c['max_abs_change']:.1f}",
                      str(c["lost"]))
        out.print(t)
    top = report["top_k"]
    t = Table(title=f"Top {top['k']} per size bucket ({top['recipe']})", title_justify="left")
    for col in ("bucket", "before", "after", "entered", "left"):
        t.add_column(col)
    for b, entry in top["buckets"].items():
        t.add_row(b, "\n".join(entry["before"]), "\n".join(entry["after"]), "\n".join(entry["entered"]) or "-",
                  "\n".join(entry["left"]) or "-")
    out.print(t)
    e = report["evaluation"]
    out.print(f"lineage-held-out ({e['recipe']}, {e['labelled_models']} labelled, {e['labelled_models_changed']} changed): "
              + ", ".join(f"{k} {_num(e['before'][k])} → {_num(e['after'][k])}" for k in e["before"]))
    out.print("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))


def _num(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def budget_table(ev, out) -> None:
    """`evaluate --budget`: mean regret and share of pools within 1 point, per policy and number of runs."""
    from rich.table import Table

    b = ev.budget
    figures = b.figures()
    table = Table(title=f"Budgeted decision, {ev.recipe} recipe: {b.n_pools} random pools of {b.pool_size}, "
                  f"{b.budget} run(s); mean regret (points) / share of pools within 1 point, 95% bootstrap over pools "
                  "(simulation error only: every pool comes from the same labelled bases)", title_justify="left")
    table.add_column("policy", no_wrap=True)
    for k in range(1, b.budget + 1):
        table.add_column(f"{k} run{'s' if k > 1 else ''}", justify="right")
    for policy, rows in figures.items():
        cells = []
        for r in rows:
            ci = r.get("mean_regret_ci95")
            cells.append(f"{r['mean_regret']:.2f} / {r['within_1pt']:.0%}" + (f"\n{ci[0]:.2f}–{ci[1]:.2f}" if ci else ""))
        table.add_row(policy, *cells)
    out.print(table)
    chosen = ", ".join(f"{m} {share:.0%}" for m, share in b.chosen.items())
    out.print(f"Ranking method chosen inside the pools' folds: {chosen}; on all labels: {ev.chosen_method}.")
    out.print(f"plan's predictive distribution (medians over pools): residual sd {b.sd:.2f} points, lineage "
              f"correlation {b.rho:.2f}.")


def plan_table(plan, file=None) -> None:
    """`basepick plan`: the proposed runs, then what is known about the pool and whether to stop."""
    from rich.table import Table

    out = console(file)
    table = Table(title=f"Next {plan.budget} run(s) — {plan.recipe} recipe, predictions by {plan.method}; "
                  f"chosen by {plan.criterion}", title_justify="left")
    for name, justify in (("#", "right"), ("model", "left"), ("lineage", "left"), ("predicted", "right"),
                          ("± sd", "right"), ("P(best)", "right"), ("exp. improvement", "right")):
        table.add_column(name, justify=justify)
    for k, p in enumerate(plan.proposals, start=1):
        gain = "—" if math.isnan(p.expected_improvement) else f"{p.expected_improvement:.2f}"
        table.add_row(str(k), p.model_id, p.lineage, f"{p.predicted:.1f}", f"{p.sd:.1f}", f"{p.p_best:.2f}", gain)
    out.print(table)
    if plan.measured:
        best_id, best = max(plan.measured.items(), key=lambda kv: kv[1])
        out.print(f"Measured {len(plan.measured)} of {plan.pool_size}; best so far {best_id} {best:.1f}.")
    else:
        out.print(f"Measured 0 of {plan.pool_size}.")
    verdict = (f"stop: the best measured base is within 1 point of the pool's best with probability "
               f"{plan.p_within_1pt:.3f} >= {plan.confidence:g}") if plan.stop else f"continue (stop at {plan.confidence:g})"
    out.print(f"P(best measured within 1 point of the pool's best): {plan.p_within_1pt:.3f} now, "
              f"{plan.p_within_1pt_after:.3f} once these runs are measured — {verdict}.")
    out.print(f"Predictive error sd {plan.residual_sd:.2f} points, lineage correlation {plan.lineage_correlation:.2f} "
              "(fitted leave-lineage-out and stored in the predictor: the distribution rank shows).")



def calibration_table(ev, out) -> None:
    """`evaluate --calibration`: rank's intervals and P(top k), plan's P(best), checked out of pool."""
    from rich.table import Table

    c = ev.calibration
    f = c.figures()
    k, level = c.top_k, f"{c.level:.0%}"
    cov, res, high = f["interval_coverage"], f["mean_residual"], f["p_top_k_at_least_half"]

    def pct(x):
        return "—" if x is None else f"{x:.0%}"

    def pts(x):
        return "—" if x is None else f"{x:+.2f}"

    def num(x):
        return "—" if x is None else f"{x:.2f}"

    out.print(f"Calibration out of pool, {ev.recipe} recipe: {c.n_pools} random pools of {c.pool_size} (seed {c.seed}), "
              "each fitted, chosen and calibrated on the labelled bases outside it only.")
    out.print(f"{level} interval coverage: {pct(cov['top_k'])} of the {k} top-ranked (n={cov['n_top_k']}), "
              f"{pct(cov['rest'])} of the rest (n={cov['n_rest']}). Mean residual (measured − shown): "
              f"{pts(res['top_k'])} points for the {k} top-ranked, {pts(res['rest'])} for the rest.")
    out.print(f"P(top {k}) stated >= 0.5: {high['n']} cases, mean stated {num(high['stated'])}, observed "
              f"{num(high['observed'])}.")
    for key, title in (("p_top_k", f"rank's P(top {k})"), ("p_best", "plan's P(best), nothing measured")):
        table = Table(title=f"Reliability of {title}: stated vs observed per bin", title_justify="left")
        for name in ("stated bin", "cases", "mean stated", "observed"):
            table.add_column(name, justify="right")
        for row in f[key]:
            table.add_row(f"{row['bin'][0]:.1f}–{row['bin'][1]:.1f}", str(row["n"]), f"{row['stated']:.3f}",
                          f"{row['observed']:.3f}")
        out.print(table)
    chosen = ", ".join(f"{m} {share:.0%}" for m, share in c.chosen.items())
    out.print(f"Ranking method chosen inside the pools: {chosen}.")
