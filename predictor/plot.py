"""`evaluate --plot`: predicted vs measured, out of fold, coloured by lineage (matplotlib, `plot` extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from predictor.atomic import atomic_file
from predictor.errors import DataError, MissingExtraError

BESIDE = ("ridge", "mean OLL v2 score")  # baselines drawn next to the predictor


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingExtraError("plot", "matplotlib")


def evaluation_plot(ev, path: str | Path) -> Path:
    """Write a PNG: the predictor with its intervals, then baselines, in the same folds."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    names = [ev.methods[0].name] + [m.name for m in ev.methods[1:] if m.name in BESIDE]
    lineages = sorted(set(ev.lineage.tolist()))
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(lineages)}
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 5.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        pred = ev.method(name).predictions
        known = ~np.isnan(pred)
        if name == ev.methods[0].name:
            lo, hi = ev.interval_low, ev.interval_high
            ok = known & ~np.isnan(lo)
            ax.errorbar(ev.truth[ok], pred[ok], yerr=[pred[ok] - lo[ok], hi[ok] - pred[ok]], fmt="none",
                        ecolor="0.75", elinewidth=1, zorder=1)
        for g in lineages:
            m = known & (ev.lineage == g)
            ax.scatter(ev.truth[m], pred[m], color=colours[g], label=g, s=28, zorder=2, edgecolor="white", linewidth=0.5)
        lims = [np.nanmin(ev.truth) - 3, np.nanmax(ev.truth) + 3]
        if name != "mean OLL v2 score":  # not on RewardBench's scale: no identity line
            ax.plot(lims, lims, color="0.4", linewidth=0.8, linestyle="--", zorder=0)
            ax.set_ylim(lims)
        m = ev.method(name).metrics
        mae = "" if np.isnan(m["mae"]) else f", MAE {m['mae']:.2f}"
        ax.set_title(f"{name}\nρ {m['spearman']:.2f}{mae}, regret@1/bucket {m['regret@1/bucket']:.2f}", fontsize=10)
        ax.set_xlim(lims)
        ax.set_xlabel(f"measured RewardBench {ev.target} (points)")
        ax.set_ylabel("mean leaderboard v2 score" if name == "mean OLL v2 score" else "predicted (points)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="lineage", loc="lower right")
    fig.suptitle(f"{ev.recipe} recipe, {ev.split} split: out-of-fold predictions "
                 f"({ev.interval_level:.0%} intervals, coverage {ev.interval_coverage:.0%})", fontsize=11)
    fig.tight_layout()
    try:
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path
