"""Issue 13 item 6: uncertainty that knows what it does not know (missing inputs, unused columns)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import shipped as D
from predictor.errors import DataError
from predictor.models import artifact
from predictor.models import predictive as P
from predictor.models import uncertainty as U
from tests.conftest import EXAMPLES, assert_one_line_error, rank_json, write

FULL = "acme/full-7b,70,30,15,8,10,30,7\n"
HEADER = "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"


def test_lineage_correlation_by_hand():
    lineage = np.array(["a", "a", "b", "b"])
    # pairs (2·1) and (-1·1): mean 0.5 over mean square (4+1+1+1)/4 = 1.75
    assert U.lineage_correlation(np.array([2.0, 1.0, -1.0, 1.0]), lineage) == pytest.approx(0.5 / 1.75)
    assert U.lineage_correlation(np.array([1.0, -1.0, 1.0, -1.0]), lineage) == 0.0  # negative: clipped
    assert U.lineage_correlation(np.array([1.0, 1.0, 2.0, 2.0]), lineage) == U.RHO_MAX  # 1.0: clipped
    assert U.lineage_correlation(np.array([1.0, 2.0]), np.array(["a", "b"])) == 0.0  # no pairs


def test_masking_patterns_and_derived_columns():
    columns = {name: np.array([10.0, 20.0]) for name in ("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro")}
    columns["params_b"] = np.array([7.0, np.nan])
    columns["mean_v2"] = columns["log_params"] = np.zeros(2)
    groups = [["gpqa"], ["params_b"]]
    out = U.masked(columns, groups)  # 4 patterns x 2 rows, pattern-major
    assert np.isnan(out["gpqa"][[2, 3, 6, 7]]).all() and not np.isnan(out["gpqa"][[0, 1, 4, 5]]).any()
    assert np.isnan(out["mean_v2"][2]) and out["mean_v2"][0] == 10.0  # derived columns follow the mask
    assert np.isnan(out["log_params"][4]) and out["log_params"][0] == pytest.approx(np.log(7.0))
    np.testing.assert_array_equal(U.patterns(columns, groups), [0, 2])  # row 2 has no params_b: bit 1


def test_widening_looks_up_the_pattern_and_refuses_candidates_with_no_input():
    cal = {"missing": {"groups": [["gpqa"], ["params_b"]], "ratios": [1.0, 1.3, 1.1, 1.6]}}
    columns = {"gpqa": np.array([5.0, np.nan, 5.0, np.nan]), "params_b": np.array([7.0, 7.0, np.nan, np.nan])}
    with pytest.raises(DataError, match="'d' has none of the inputs"):
        U.widening(cal, columns, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(U.widening(cal, {k: v[:3] for k, v in columns.items()}, ["a", "b", "c"]), [1.0, 1.3, 1.1])
    assert (U.widening(None, columns, list("abcd")) == 1.0).all()  # an old artifact: no widening


def test_rank_widens_the_interval_of_a_candidate_missing_inputs(run, tmp_path):
    path = write(tmp_path / "c.csv", HEADER + FULL + "acme/no-gpqa-7b,70,30,15,,10,30,7\n")
    cands = {c["model_id"]: c for c in rank_json(run, path)["candidates"]}
    cal = artifact.load(D.shipped_predictor_dir()).get("regression", "score").calibration_
    groups = cal["missing"]["groups"]
    expected = cal["missing"]["ratios"][1 << groups.index(["gpqa"])]
    full, partial = cands["acme/full-7b"], cands["acme/no-gpqa-7b"]
    assert full["interval_widening"] == 1.0 and partial["interval_widening"] == pytest.approx(expected)
    error = P.Calibration.from_json(cal["predictive"]).error
    width = (error.low + error.high) * float(P.S.ppf(0.9, error.dof))  # 80% interval of a full-input candidate
    assert full["high"] - full["low"] == pytest.approx(width, rel=0.03)  # up to the fit's own uncertainty
    assert partial["high"] - partial["low"] == pytest.approx(width * expected, rel=0.03)  # the error, widened
    assert expected > 1.0  # masking a leaderboard score costs accuracy, measured lineage-out


def test_rank_refuses_a_candidate_without_any_input_of_the_method(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,params_b,arc\nacme/only-v1,7,60\n")
    method = artifact.load(D.shipped_predictor_dir()).get("regression", "score")
    if "params_b" in [n for g in method.calibration_["missing"]["groups"] for n in g]:
        pytest.skip("the chosen method reads params_b")
    assert_one_line_error(run("rank", path, "--strict"), "acme/only-v1", "lacks every input")
    listed = run("rank", path, "--format", "json")  # without --strict: listed with its command; none ranked: exit 2
    assert listed.exit_code == 2 and json.loads(listed.stdout)["unrankable"][0]["model_id"] == "acme/only-v1"


def test_given_but_unused_columns_are_reported(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,pretrain_tokens_t,post_training\nQwen/Qwen2.5-7B-Instruct,18,instruct\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 0
    assert "given but unused" in result.stderr and "post_training, pretrain_tokens_t" in result.stderr
    (cand,) = json.loads(result.stdout)["candidates"]
    assert cand["given_unused"] == ["pretrain_tokens_t", "post_training"]
    plain = run("rank", EXAMPLES / "candidates.csv", "--format", "json")
    assert "given but unused" not in plain.stderr
