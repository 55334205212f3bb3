"""How long the Open LLM Leaderboard took to run its v2 tasks on a 1B, 8B and 14B model, from its own figures.

The leaderboard published a CO2 cost per row (the shipped snapshot's ``metadata_co2_cost``, kg) and the
formula it used (huggingface.co/docs/leaderboards/open_llm_leaderboard/emissions): the run's
``total_evaluation_time_seconds`` on a node of 8 H100 SXM at 0.7 kW each (5.6 kW) in Virginia
(269.8 g CO2/kWh). Inverting it gives each run's wall time: hours = kg / (5.6 * 0.2698).

    python examples/lm-eval/eval_time.py      # prints the table examples/lm-eval/README.md shows
"""

from __future__ import annotations

import csv
import statistics

from predictor.data.shipped import V2_FILE, benchmarks_dir

KG_PER_HOUR = 5.6 * 269.8 / 1000  # the leaderboard's formula: 8 x 0.7 kW x 269.8 g/kWh
SIZES = {"1B": (0.9, 1.6), "8B": (7.0, 9.0), "14B": (13.0, 15.0)}  # params_b ranges, billions
EXAMPLES = ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
            "Qwen/Qwen2.5-14B-Instruct", "microsoft/phi-4")


def minutes(row: dict) -> float | None:
    """The row's wall-clock evaluation time, minutes (None when the leaderboard gave no cost)."""
    try:
        kg = float(row["metadata_co2_cost"])
    except ValueError:
        return None
    return kg / KG_PER_HOUR * 60.0 if kg > 0 else None


def table() -> list[str]:
    with (benchmarks_dir() / V2_FILE).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["| size | chat template | rows | median minutes | middle half |", "|---|---|---|---|---|"]
    for size, (low, high) in SIZES.items():
        for template in ("TRUE", "FALSE"):
            times = sorted(m for r in rows if r["model_has_chat_template"] == template
                           and r["metadata_params_billions"] and low <= float(r["metadata_params_billions"]) <= high
                           and (m := minutes(r)) is not None)
            q1, _, q3 = statistics.quantiles(times, n=4)
            lines.append(f"| {size} ({low:g}-{high:g}B) | {'yes' if template == 'TRUE' else 'no'} | {len(times)} | "
                         f"{statistics.median(times):.0f} | {q1:.0f}-{q3:.0f} |")
    lines.append("")
    for model_id in EXAMPLES:
        for r in rows:
            if r["model_name"] == model_id and (m := minutes(r)) is not None:
                template = "with" if r["model_has_chat_template"] == "TRUE" else "without"
                lines.append(f"- {model_id} ({r['model_precision']}, {template} chat template): {m:.0f} minutes")
    return lines


if __name__ == "__main__":
    print("\n".join(table()))
