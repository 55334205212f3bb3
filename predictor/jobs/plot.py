"""Plots (matplotlib, the `plot` extra, imported lazily): `evaluate --plot` (predicted vs measured; with
--budget regret vs runs per policy; with --calibration stated vs observed probabilities) and `rank --plot`
(a forest plot)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from predictor.data.atomic import atomic_file
from predictor.errors import DataError, MissingExtraError

BESIDE = ("ridge", "mean OLL v2 score")  # baselines drawn next to the predictor


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingExtraError("plot", "matplotlib")


CHOSEN = "as fit chooses (nested)"  # the panel of the method fit would choose, with its intervals


def evaluation_plot(ev, path: str | Path) -> Path:
    """Write a PNG: the method fit would choose (chosen and calibrated inside each fold) with its intervals,
    then the LightGBM predictor and baselines, in the same folds."""
    plt = _pyplot()
    names = [CHOSEN, ev.methods[0].name] + [m.name for m in ev.methods[1:] if m.name in BESIDE]
    lineages = sorted(set(ev.lineage.tolist()))
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(lineages)}
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 5.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        pred = ev.interval_pred if name == CHOSEN else ev.method(name).predictions
        known = ~np.isnan(pred)
        if name == CHOSEN:
            lo, hi = ev.interval_low, ev.interval_high
            ax.errorbar(ev.truth[known], pred[known], yerr=[pred[known] - lo[known], hi[known] - pred[known]],
                        fmt="none", ecolor="0.75", elinewidth=1, zorder=1)
        for g in lineages:
            m = known & (ev.lineage == g)
            ax.scatter(ev.truth[m], pred[m], color=colours[g], label=g, s=28, zorder=2, edgecolor="white", linewidth=0.5)
        lims = [np.nanmin(ev.truth) - 3, np.nanmax(ev.truth) + 3]
        if name != "mean OLL v2 score":  # not on RewardBench's scale: no identity line
            ax.plot(lims, lims, color="0.4", linewidth=0.8, linestyle="--", zorder=0)
            ax.set_ylim(lims)
        if name == CHOSEN:
            ax.set_title(f"{name}\n{ev.interval_level:.0%} intervals cover {ev.interval_coverage:.0%}", fontsize=10)
        else:
            m = ev.method(name).metrics
            mae = "" if np.isnan(m["mae"]) else f", MAE {m['mae']:.2f}"
            ax.set_title(f"{name}\nρ {m['spearman']:.2f}{mae}, regret@1/bucket {m['regret@1/bucket']:.2f}", fontsize=10)
        ax.set_xlim(lims)
        ax.set_xlabel(f"measured RewardBench {ev.target} (points)")
        ax.set_ylabel("mean leaderboard v2 score" if name == "mean OLL v2 score" else "predicted (points)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="lineage", loc="lower right")
    fig.suptitle(f"{ev.recipe} recipe, {ev.split} split: out-of-fold predictions", fontsize=11)
    fig.tight_layout()
    return _save(fig, Path(path))


def _pyplot():
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    try:
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path


MAX_FOREST_ROWS = 60
BUCKET_COLOURS = {"<3B": "tab:green", "3-6B": "tab:blue", ">=6B": "tab:purple", "?": "0.5"}


def forest_plot(ranking, path: str | Path) -> Path:
    """`rank --plot`: one row per candidate (best on top), prediction and interval, coloured by size bucket;
    the default Llama-3.x models are marked. At most MAX_FOREST_ROWS rows (use --top for fewer)."""
    from predictor.models.baselines import DEFAULT_LLAMA

    plt = _pyplot()
    rows = ranking.candidates[:MAX_FOREST_ROWS]
    defaults = set(DEFAULT_LLAMA.values())
    longest = max(len(c.model_id) for c in rows)
    fig, ax = plt.subplots(figsize=(5.5 + 0.07 * longest, 1.8 + 0.32 * len(rows)))
    for y, c in enumerate(reversed(rows)):
        colour = BUCKET_COLOURS.get(c.size_bucket, "0.5")
        if not np.isnan(c.low):
            ax.plot([c.low, c.high], [y, y], color=colour, linewidth=2, alpha=0.6, solid_capstyle="butt")
        default = c.model_id in defaults
        ax.scatter([c.predicted], [y], color=colour, marker="D" if default else "o", s=60 if default else 30,
                   edgecolor="black" if default else "white", zorder=3)
    labels = [f"{c.model_id}{' (default)' if c.model_id in defaults else ''}{' *' if c.outside_labelled_range else ''}"
              for c in reversed(rows)]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    for bucket, colour in BUCKET_COLOURS.items():
        if any(c.size_bucket == bucket for c in rows):
            ax.scatter([], [], color=colour, label="size unknown" if bucket == "?" else bucket)
    ax.scatter([], [], color="white", edgecolor="black", marker="D", label="default Llama-3.x")
    ax.set_xlabel(f"predicted RewardBench {ranking.target} (points), {ranking.level:.0%} intervals")
    ax.grid(axis="x", alpha=0.3)
    more = f" (top {len(rows)} of {len(ranking.candidates)})" if len(ranking.candidates) > len(rows) else ""
    fig.suptitle(f"{ranking.recipe} recipe, ranked by {ranking.method}{more}\n* beyond the labelled sizes; "
                 "colour: size bucket", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))  # room for the legend below
    return _save(fig, Path(path))


def budget_plot(ev, path: str | Path) -> Path:
    """`evaluate --budget --plot`: mean regret and share of pools within 1 point vs runs, per policy,
    with the 95% bootstrap band over pools."""
    plt = _pyplot()
    b = ev.budget
    figures = b.figures()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.8))
    markers = "osD^vP"
    for n, (policy, rows) in enumerate(figures.items()):
        runs = np.array([r["runs"] for r in rows]) + 0.05 * (n - (len(figures) - 1) / 2)  # apart where they tie
        for ax, key in ((left, "mean_regret"), (right, "within_1pt")):
            line, = ax.plot(runs, [r[key] for r in rows], marker=markers[n % len(markers)], label=policy,
                            linestyle="--" if policy == "LightGBM top-k" else "-", markersize=5)
            if f"{key}_ci95" in rows[0]:
                ax.fill_between(runs, [r[f"{key}_ci95"][0] for r in rows], [r[f"{key}_ci95"][1] for r in rows],
                                color=line.get_color(), alpha=0.07)
    left.set_yscale("symlog", linthresh=1.0)  # linear below 1 point, where the targets are; log above
    left.set_ylabel("mean regret (points): pool's best − best trained")
    right.set_ylabel("share of pools within 1 point of the best")
    for ax in (left, right):
        ax.set_xlabel("runs (bases trained)")
        ax.set_xticks(range(1, b.budget + 1))
        ax.grid(alpha=0.3)
    left.set_ylim(bottom=0)
    from matplotlib.ticker import FormatStrFormatter

    left.set_yticks([t for t in (0, 0.25, 0.5, 1, 2, 5, 10, 20) if t <= max(1.0, left.get_ylim()[1])])
    left.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    right.set_ylim(0, 1.02)
    left.legend(fontsize=8)
    fig.suptitle(f"{ev.recipe} recipe: {b.n_pools} random pools of {b.pool_size}, out of fold; bands: 95% "
                 f"bootstrap over pools, simulation error only (chosen method on all labels: {ev.chosen_method})",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def evaluation_figure(ev, path: str | Path) -> Path:
    """`evaluate --plot`: the reliability plot with --calibration, else regret vs runs with --budget, else
    predicted vs measured."""
    if ev.calibration is not None:
        return reliability_plot(ev, path)
    return (budget_plot if ev.budget is not None else evaluation_plot)(ev, path)


def reliability_plot(ev, path: str | Path) -> Path:
    """`evaluate --calibration --plot`: stated against observed probability per bin for rank's P(top k) and
    plan's P(best) (marker area: cases), beside the interval's coverage for the top-ranked and the rest."""
    plt = _pyplot()
    c = ev.calibration
    f = c.figures()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    left.plot([0, 1], [0, 1], color="0.4", linewidth=0.8, linestyle="--", label="perfect calibration")
    for key, label, marker in (("p_top_k", f"rank: P(top {c.top_k})", "o"), ("p_best", "plan: P(best)", "s")):
        rows = f[key]
        sizes = [12 + 200 * r["n"] / max(x["n"] for x in rows) for r in rows]
        left.plot([r["stated"] for r in rows], [r["observed"] for r in rows], linewidth=1, alpha=0.6)
        left.scatter([r["stated"] for r in rows], [r["observed"] for r in rows], s=sizes, marker=marker, label=label,
                     zorder=3, edgecolor="white")
        for r in rows:
            left.annotate(str(r["n"]), (r["stated"], r["observed"]), fontsize=7, xytext=(4, -9),
                          textcoords="offset points", color="0.35")
    left.set_xlim(-0.02, 1.02)
    left.set_ylim(-0.02, 1.02)
    left.set_xlabel("stated probability (bin mean)")
    left.set_ylabel("observed share")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    cov = f["interval_coverage"]
    groups = [f"top {c.top_k} ranked\n(n={cov['n_top_k']})", f"the rest\n(n={cov['n_rest']})"]
    right.bar(groups, [cov["top_k"] or 0.0, cov["rest"] or 0.0], color=["tab:red", "tab:blue"], alpha=0.7)
    right.axhline(c.level, color="0.3", linestyle="--", linewidth=0.8, label=f"nominal {c.level:.0%}")
    right.set_ylim(0, 1)
    right.set_ylabel("interval coverage")
    res = f["mean_residual"]
    right.set_title(f"mean residual (measured − shown): top {c.top_k} {res['top_k']:+.2f}, rest "
                    f"{res['rest']:+.2f} points", fontsize=9)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{ev.recipe} recipe: {c.n_pools} random pools of {c.pool_size}, each fitted and calibrated "
                 f"outside the pool (seed {c.seed})", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
