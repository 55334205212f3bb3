"""Render results for stdout: a rich table, JSON (with schema_version) or CSV. Results only."""

from __future__ import annotations

import csv
import io
import json
import math
import sys

from predictor.rank import Ranking

FORMATS = ("table", "json", "csv")


def console(file=None):
    """A rich console on stdout; plain text and a fixed width off a terminal (stable in pipes and tests)."""
    from rich.console import Console

    file = file or sys.stdout
    tty = file.isatty()
    return Console(file=file, width=None if tty else 140, no_color=not tty, highlight=False, soft_wrap=False)


def to_json(payload: dict) -> str:
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


def _provenance(features: dict[str, list[str]]) -> str:
    parts = []
    if features["given"]:
        parts.append(f"given {len(features['given'])}")
    if features["snapshot"]:
        parts.append(f"snapshot {len(features['snapshot'])}")
    if features["missing"]:
        parts.append("missing " + ",".join(features["missing"]))
    return " · ".join(parts)


def ranking_table(ranking: Ranking, file=None) -> None:
    from rich.table import Table

    table = Table(
        title=f"Predicted RewardBench {ranking.target} — {ranking.recipe} recipe",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("model")
    table.add_column("predicted", justify="right")
    table.add_column("size")
    table.add_column("features")
    for c in ranking.candidates:
        size = c.size_bucket + (f" ({c.params_b:g}B)" if not math.isnan(c.params_b) else "")
        mark = "*" if c.outside_labelled_range else ""
        table.add_row(str(c.rank), c.model_id, f"{c.predicted:.1f}{mark}", size, _provenance(c.features))
    console(file).print(table)


def ranking_csv(ranking: Ranking) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["rank", "model_id", "predicted", "size_bucket", "params_b", "outside_labelled_range", "given", "snapshot", "missing"]
    )
    for c in ranking.candidates:
        row = c.to_json()
        writer.writerow(
            [row["rank"], row["model_id"], f"{row['predicted']:.2f}", row["size_bucket"],
             "" if row["params_b"] is None else row["params_b"], str(row["outside_labelled_range"]).lower()]
            + [";".join(c.features[k]) for k in ("given", "snapshot", "missing")]
        )
    return buf.getvalue()
