"""Tables a person can read (issue 13, item 8): the rank table at 80 and 140 columns (golden files), COLUMNS
respected off a terminal, and every piece of jargon explained where it is shown."""

from __future__ import annotations

import os

import pytest

from tests.conftest import EXAMPLES, REPO

GOLDEN = REPO / "tests" / "golden"


@pytest.mark.parametrize("width", [80, 140])
def test_rank_table_matches_golden(run, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    result = run("rank", EXAMPLES / "candidates.csv")
    assert result.exit_code == 0
    golden = GOLDEN / f"rank_table_{width}.txt"
    if os.environ.get("BASEPICK_UPDATE_GOLDEN"):
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [60, 80, 100, 140, 200])
def test_piped_output_respects_columns(run, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    lines = run("rank", EXAMPLES / "candidates.csv").stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert max(len(line) for line in lines) > width - 12  # the width is used, not a fixed one


def test_without_columns_a_pipe_gets_140(run, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert max(len(line) for line in run("rank", EXAMPLES / "candidates.csv").stdout.splitlines()) == 140


def test_at_80_columns_ids_predictions_intervals_and_odds_stay_on_one_line(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = run("rank", EXAMPLES / "candidates.csv", "--format", "json")
    import json

    table = run("rank", EXAMPLES / "candidates.csv").stdout.splitlines()
    for c in json.loads(result.stdout)["candidates"]:
        (line,) = [ln for ln in table if f" {c['model_id']} " in ln]
        cells = line.split()
        assert cells[0] == str(c["rank"]) and cells[1] == c["model_id"]
        low, high = (float(x) for x in cells[3].split("–"))
        shown = [float(cells[2].rstrip("*")), low, high, float(cells[4])]
        exact = [c["predicted"], c["low"], c["high"], c["p_top_k"]]  # JSON rounds to 2-3 decimals, the table to 1-2
        assert all(abs(a - b) <= 0.051 for a, b in zip(shown, exact)), (shown, exact)


def test_rank_legend_explains_the_columns(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = " ".join(run("rank", EXAMPLES / "candidates.csv").stdout.split())
    for phrase in ("predicted: RewardBench points", "interval: 80% prediction interval", "P(top 3): probability of",
                   "vs Llama: predicted points over the study's default", "mean_v2: mean of the six leaderboard v2",
                   "log_params: log of the parameter count", "features: where the inputs came from"):
        assert phrase in text, phrase


def test_inspect_explains_its_columns(run):
    text = " ".join(run("inspect").stdout.split())
    assert "regret@1/bkt: points lost by taking the predicted best" in text and "ρ mean score: the same" in text


def test_evaluate_help_explains_its_columns(run):
    text = " ".join(run("evaluate", "--help").stdout.split())
    for phrase in ("cov@k share of the measured top k", "regret@1/bkt points lost", "MAE mean absolute error"):
        assert phrase in text, phrase
