"""Honest wording and small fixes (issue 13, item 7): overlap is "not distinguishable", options list and check
their ranges, --max-params compares nominal sizes (validate: tests/trainer; identical refits: test_versions)."""

from __future__ import annotations

import math

import numpy as np

from predictor.data.features import nominal_size, stated_size
from predictor.evals.evaluate import MethodResult, verdict
from tests.conftest import EXAMPLES, assert_one_line_error, rank_json


def method(name: str, rho: float, low: float, high: float) -> MethodResult:
    metrics = {"spearman": rho, "regret@1/bucket": 1.0, "coverage@5": 0.6}
    lows = {"spearman": low, "regret@1/bucket": 0.5, "coverage@5": 0.4}
    highs = {"spearman": high, "regret@1/bucket": 1.5, "coverage@5": 0.8}
    return MethodResult(name, metrics, lows, highs, np.zeros(1))


def test_verdict_says_beats_only_when_the_intervals_do_not_overlap():
    ours = method("basepick (LightGBM)", 0.82, 0.56, 0.91)
    (line, *_) = verdict([ours, method("mean OLL v2 score", 0.78, 0.46, 0.93)])
    assert line.startswith("spearman: the predictor (0.820) is not distinguishable from the best baseline, mean OLL v2")
    assert "[0.56, 0.91] and [0.46, 0.93] overlap" in line and "beats" not in line
    (line, *_) = verdict([ours, method("mean OLL v2 score", 0.30, 0.10, 0.50)])
    assert line.endswith("beats the best baseline, mean OLL v2 score (0.300) (95% intervals do not overlap)")
    (line, *_) = verdict([method("basepick (LightGBM)", 0.2, 0.1, 0.3), method("ridge", 0.8, 0.7, 0.9)])
    assert "does NOT beat the best baseline, ridge" in line
    no_ci = method("basepick (LightGBM)", 0.82, math.nan, math.nan)
    (line, *_) = verdict([no_ci, method("ridge", 0.78, math.nan, math.nan)])
    assert "is ahead of the best baseline, ridge (0.780) on point estimates" in line and "beats" not in line


def test_evaluate_table_explains_its_columns(run):
    result = run("evaluate", "--no-baselines", "--bootstrap", "0")
    text = " ".join(result.stdout.split())  # the table wraps long lines
    assert result.exit_code == 0 and "cov@k: share of the measured top k found in the predicted top k" in text
    assert "regret@1/bkt: points lost by taking the predicted best instead of the measured best" in text


def test_split_lists_its_choices(run):
    assert_one_line_error(run("evaluate", "--split", "alphabetical"), "--split", "lineage", "temporal", "random")
    assert "[lineage|temporal|random]" in run("evaluate", "--help").stdout


# --max-params compares nominal sizes


def test_nominal_sizes():
    assert stated_size("meta-llama/Llama-3.1-8B-Instruct") == 8.0
    assert stated_size("mistralai/Mixtral-8x7B-Instruct-v0.1") == 56.0
    assert math.isnan(stated_size("allenai/OLMoE-1B-7B-0924"))  # two sizes: ambiguous
    assert math.isnan(stated_size("internlm/internlm2-chat-1_8b"))  # 1.8B or 8B: ambiguous
    assert nominal_size("meta-llama/Llama-3.1-8B-Instruct", 8.03) == 8.0
    assert nominal_size("Qwen/Qwen2.5-7B-Instruct", 7.62) == 7.0
    assert nominal_size("BenevolenceMessiah/Yi-Coder-9B-Chat-Instruct-TIES-MoE-v1.0", 28.309) == 28.309
    assert nominal_size("microsoft/phi-4", 14.66) == 14.66


def test_max_params_8_keeps_the_8b_models(run):
    kept = {c["model_id"] for c in rank_json(run, EXAMPLES / "candidates.csv", "--max-params", "8")["candidates"]}
    assert "meta-llama/Llama-3.1-8B-Instruct" in kept  # 8.03B, nominally 8B
    assert not kept & {"google/gemma-2-9b-it", "tiiuae/Falcon3-10B-Instruct", "Qwen/Qwen2.5-14B-Instruct"}
    seven = {c["model_id"] for c in rank_json(run, EXAMPLES / "candidates.csv", "--max-params", "7")["candidates"]}
    assert "Qwen/Qwen2.5-7B-Instruct" in seven and "meta-llama/Llama-3.1-8B-Instruct" not in seven
    assert "nominal size" in run("rank", "--help").stdout
