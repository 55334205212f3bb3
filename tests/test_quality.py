"""Issue 7 behaviour: evaluate (baselines, gates, plot), and rank's intervals, odds, drivers, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import shipped as D
from predictor.models import artifact
from predictor.models import predictive as P
from tests.conftest import EXAMPLES, assert_one_line_error, rank_json

BASELINE_NAMES = {"default Llama-3.x", "mean OLL v2 score", "single best benchmark", "log params", "PCA3 + OLS",
                  "seed ElasticNet", "ridge"}
WITH_UNUSED = "basepick + pretrain_tokens_t, post_training"  # evaluated with the columns rank reports as unused


@pytest.fixture(scope="module")
def evaluation():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.main, ["evaluate", "--bootstrap", "50", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_evaluate_reports_the_predictor_and_every_baseline_in_the_same_folds(evaluation):
    names = [m["name"] for m in evaluation["methods"]]
    assert names[0] == "basepick (LightGBM)" and names[1] == WITH_UNUSED and set(names[2:]) == BASELINE_NAMES
    assert evaluation["split"] == "lineage" and evaluation["n_models"] == 42
    ours = evaluation["methods"][0]
    for key in ("spearman", "kendall", "mae", "coverage@3", "coverage@5", "coverage@10", "regret@1/bucket",
                "best_of_3_regret/bucket", "regret@1/pooled"):
        assert ours["metrics"][key] is not None
        assert ours["ci95_low"][key] <= ours["metrics"][key] + 1e-9 or key.startswith("regret")
    # the figures measured when this was written (benchmarks/RESULTS.md); a regression shows up here
    assert ours["metrics"]["spearman"] >= 0.80
    assert ours["metrics"]["regret@1/bucket"] <= 1.9
    mean_score = next(m for m in evaluation["methods"] if m["name"] == "mean OLL v2 score")
    assert mean_score["metrics"]["mae"] is None  # not on RewardBench's scale
    assert ours["metrics"]["spearman"] > mean_score["metrics"]["spearman"]
    # overlapping 95% intervals (0.82 [0.56, 0.91] vs 0.78 [0.46, 0.93]) are no win: issue 13 asks for honest words
    assert evaluation["verdict"][0].startswith("spearman: the predictor (0.820) is not distinguishable from the best "
                                               "baseline, mean OLL v2 score (0.783): their 95% intervals")
    assert not any("beats" in line for line in evaluation["verdict"])


def test_evaluate_interval_coverage_is_near_nominal(evaluation):
    assert evaluation["interval"]["level"] == 0.8
    assert 0.75 <= evaluation["interval"]["empirical_coverage"] <= 0.85  # nominal ± 5 points (issue 7)


def test_out_of_fold_predictions_are_listed_per_model(evaluation):
    rows = evaluation["predictions"]
    assert len(rows) == 42 and {"model_id", "lineage", "measured", "basepick (LightGBM)"} <= set(rows[0])


def test_fail_under_gate(run):
    result = run("evaluate", "--no-baselines", "--bootstrap", "0", "--fail-under", "0.99", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["methods"][0]["name"] == "basepick (LightGBM)"  # the report still comes
    assert "below --fail-under 0.99" in result.stderr
    assert run("evaluate", "--no-baselines", "--bootstrap", "0", "--fail-under", "0.5").exit_code == 0


@pytest.mark.parametrize("split", ["temporal", "random"])
def test_other_splits_run(run, split):
    result = run("evaluate", "--split", split, "--no-baselines", "--bootstrap", "0", "--format", "json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["split"] == split and out["methods"][0]["metrics"]["spearman"] is not None


def test_unknown_split(run):
    assert_one_line_error(run("evaluate", "--split", "alphabetical"), "--split", "lineage")


def test_plot_writes_a_png(run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "eval.png"
    result = run("evaluate", "--no-baselines", "--bootstrap", "0", "--plot", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["eval.png"]  # no temporary file left


# ---- rank: intervals, odds, drivers, gains, weights ---------------------------------------------


def test_rank_intervals_come_from_the_stored_predictive_distribution(run):
    out = rank_json(run, EXAMPLES / "candidates.csv", "--interval", "0.8")
    model = artifact.load(D.shipped_predictor_dir()).get("regression", "score")
    error = P.Calibration.from_json(model.calibration_["predictive"]).error
    t = float(P.S.ppf(0.9, error.dof))
    for c in out["candidates"]:
        below, above = c["predicted"] - c["low"], c["high"] - c["predicted"]
        assert below / above == pytest.approx((error.low * t - error.loc) / (error.high * t + error.loc), rel=0.02)
        stretch = (below + above) / ((error.low + error.high) * t)  # >= 1: the fit's own uncertainty, beyond the range
        assert 0.995 <= stretch <= (1.5 if c["outside_labelled_range"] else 1.1)
    wider = rank_json(run, EXAMPLES / "candidates.csv", "--interval", "0.95")["candidates"][0]
    assert wider["high"] - wider["low"] > out["candidates"][0]["high"] - out["candidates"][0]["low"]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_odds_sum_to_k_and_follow_the_order(run, k):
    cands = rank_json(run, EXAMPLES / "candidates.csv", "--top-k", str(k))["candidates"]
    assert sum(c["p_top_k"] for c in cands) == pytest.approx(k, abs=0.06)  # k in expectation (Rao–Blackwellised draws)
    assert cands[0]["p_top_k"] >= cands[-1]["p_top_k"]
    assert all(0.0 <= c["p_top_k"] <= 1.0 for c in cands)


def test_drivers_and_gain_against_the_default_llama(run):
    cands = {c["model_id"]: c for c in rank_json(run, EXAMPLES / "candidates.csv")["candidates"]}
    for c in cands.values():
        assert 1 <= len(c["drivers"]) <= 3  # a rule has one input
        contributions = [abs(d["contribution"]) for d in c["drivers"]]
        assert contributions == sorted(contributions, reverse=True)
    llama = cands["meta-llama/Llama-3.1-8B-Instruct"]
    assert llama["gain_vs_default"] == {"model": "meta-llama/Llama-3.1-8B-Instruct", "points": 0.0}
    qwen = cands["Qwen/Qwen2.5-7B-Instruct"]
    assert qwen["gain_vs_default"]["points"] == pytest.approx(qwen["predicted"] - llama["predicted"], abs=0.02)
    small = cands["Qwen/Qwen2.5-0.5B-Instruct"]
    assert small["gain_vs_default"]["model"] == "meta-llama/Llama-3.2-1B-Instruct"


def test_weights_combine_section_predictions(run):
    """--weights ranks by the weighted mean of the sections' predictions; its distribution is refitted on the
    sections' stored levels and scores, combined with the same weights."""
    from predictor.data.candidates import read_candidates
    from predictor.data.shipped import load_snapshot
    from predictor.jobs.rank import Objective

    ids = EXAMPLES / "candidates.csv"
    weights = {"chat": 1.0, "chat_hard": 2.0, "safety": 1.0, "reasoning": 0.0}
    out = rank_json(run, ids, "--weights", "chat=1,chat_hard=2,safety=1,reasoning=0")
    assert out["target"] == "weighted(chat=1,chat_hard=2,safety=1,reasoning=0)"
    bundle = artifact.load(D.shipped_predictor_dir())
    table = read_candidates(ids, load_snapshot())
    raw = sum(w / 4 * np.clip(bundle.get("regression", s).predict(table.columns), 0, 100) for s, w in weights.items())
    objective = Objective.build(bundle, "regression", "score", weights)
    expected = dict(zip(table.ids, objective.calibration().mean(raw)))
    assert [c["model_id"] for c in out["candidates"]] == sorted(table.ids, key=lambda i: (-expected[i], i))
    for c in out["candidates"]:
        assert c["predicted"] == pytest.approx(expected[c["model_id"]], abs=0.03)
        assert c["low"] < c["predicted"] < c["high"]


@pytest.mark.parametrize(
    "weights, fragment",
    [
        ("chat=0,chat_hard=0", "all weights are zero"),
        ("chat=one", "not a number"),
        ("overall=1", "not section=weight"),
        ("chat=-1", ">= 0"),
        ("chat=1,chat=2", "twice"),
        ("chat", "not section=weight"),
    ],
)
def test_bad_weights(run, weights, fragment):
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", "--weights", weights), "--weights", fragment)


def test_weights_with_a_section_target_is_a_usage_error(run):
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", "--weights", "chat=1", "--target", "chat"), "--weights")


@pytest.mark.parametrize("recipe", ["regression", "bradley_terry"])
def test_rank_names_the_chosen_method_and_its_figures(run, recipe):
    entry = artifact.load(D.shipped_predictor_dir()).metadata["models"][f"{recipe}/score"]
    result = run("rank", EXAMPLES / "candidates.csv", "--recipe", recipe, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["method"] == entry["method"]
    figures = entry["calibration"]["choice"]["methods"]
    assert f"ranking by {entry['method']}, chosen by leave-lineage-out" in result.stderr
    assert f"basepick (LightGBM) {figures['basepick (LightGBM)']['decision_regret']:.2f}" in result.stderr
    table = run("rank", EXAMPLES / "candidates.csv", "--recipe", recipe)
    assert f"ranked by {entry['method']}" in table.stdout
