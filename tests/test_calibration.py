"""`evaluate --calibration` (issue 20): rank's and plan's stated uncertainty checked out of pool — no pool's
labels reach what is said about it, the figures by hand, the JSON and table, the plot; too-large pools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import dataset as DS
from predictor.data import shipped as D
from predictor.errors import DataError
from predictor.evals import calibration as CA
from predictor.models import bayes as Y
from predictor.models import calibrate as C
from predictor.models import methods as Mt
from predictor.models import predictive as P
from tests.conftest import assert_one_line_error

LABELS = [D.benchmarks_dir() / D.LABELS_FILE]


def test_reliability_by_hand():
    stated = np.array([0.05, 0.07, 0.15, 0.95, 1.0])
    happened = np.array([0, 1, 0, 1, 1])
    rows = CA.reliability(stated, happened)
    assert [r["bin"] for r in rows] == [[0.0, 0.1], [0.1, 0.2], [0.9, 1.0]]  # 1.0 falls in the last bin
    assert [r["n"] for r in rows] == [2, 1, 2]
    assert rows[0]["stated"] == pytest.approx(0.06) and rows[0]["observed"] == 0.5 and rows[2]["observed"] == 1.0


def test_figures_by_hand():
    # one pool of 4: ranked 0, 1, 2, 3; measured 80, 70, 75, 60; top 1 ranked
    truth = np.array([[80.0, 70.0, 75.0, 60.0]])
    result = CA.CalibrationResult(
        pool_size=4, n_pools=1, top_k=1, level=0.8, seed=0, truth=truth,
        shown=np.array([[82.0, 74.0, 72.0, 61.0]]), low=np.array([[79.0, 71.0, 70.0, 55.0]]),
        high=np.array([[85.0, 77.0, 76.0, 65.0]]), position=np.array([[0, 1, 2, 3]]),
        p_top=np.array([[0.6, 0.2, 0.15, 0.05]]), p_best=np.array([[0.6, 0.2, 0.15, 0.05]]))
    f = result.figures()
    assert f["interval_coverage"]["top_k"] == 1.0 and f["interval_coverage"]["rest"] == pytest.approx(2 / 3)
    assert f["mean_residual"]["top_k"] == -2.0 and f["mean_residual"]["rest"] == pytest.approx((-4 + 3 - 1) / 3)
    assert f["p_top_k_at_least_half"] == {"n": 1, "stated": 0.6, "observed": 1.0}


def test_no_pool_label_ever_reaches_what_is_said_about_it(monkeypatch):
    """Every fit and every method choice behind a pool's figures sees only the bases outside the pool."""
    ds = DS.load_dataset(LABELS, "regression", "score")
    current, seen = {}, []
    real_speak, real_fit, real_choose = CA.speak, Mt.fit, Mt.choose

    def speak(model, pool, level, top_k):
        seen.append(set(model.calibration_["ids"]) & set(pool.ids))  # the stored calibration data too
        return real_speak(model, pool, level, top_k)

    def fit_chosen(train, config, seed=0):
        current["outside"] = set(train.ids)
        return C.fit_chosen(train, config, seed=seed)

    def fit(name, train, config):
        seen.append(set(train.ids) - current["outside"])
        return real_fit(name, train, config)

    def choose(train, config, **kw):
        seen.append(set(train.ids) - current["outside"])
        return real_choose(train, config, **kw)

    monkeypatch.setattr(CA, "speak", speak)
    monkeypatch.setattr(CA, "fit_chosen", fit_chosen)
    monkeypatch.setattr(Mt, "fit", fit)
    monkeypatch.setattr(Mt, "choose", choose)
    result = CA.simulate(ds, pool_size=12, n_pools=2)
    assert len(seen) > 20 and all(not leak for leak in seen)
    assert result.truth.shape == (2, 12)


@pytest.fixture(scope="module")
def calibration_json():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.main, ["evaluate", "--no-baselines", "--bootstrap", "0", "--calibration", "--pools",
                                           "3", "--recipe", "bradley_terry", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_calibration_json_contract(calibration_json):
    c = calibration_json["calibration"]
    assert c["pools"] == 3 and c["pool_size"] == 12 and c["top_k"] == 3 and c["level"] == 0.8
    assert c["interval_coverage"]["n_top_k"] == 9 and c["interval_coverage"]["n_rest"] == 27
    for key in ("p_top_k", "p_best"):
        assert sum(r["n"] for r in c[key]) == 36
        assert all(0 <= r["stated"] <= 1 and 0 <= r["observed"] <= 1 for r in c[key])
    assert sum(r["n"] * r["observed"] for r in c["p_top_k"]) == pytest.approx(9, abs=0.01)  # 3 per pool (JSON: 4 decimals)
    assert sum(r["n"] * r["observed"] for r in c["p_best"]) == pytest.approx(3, abs=0.01)
    assert set(c["chosen_in_pools"]) <= set(Mt.METHODS)
    assert calibration_json["interval"]["method"].startswith("the method fit chooses")


def test_calibration_table_and_plot(run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "reliability.png"
    result = run("evaluate", "--no-baselines", "--bootstrap", "0", "--calibration", "--pools", "2", "--plot", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["reliability.png"]
    assert "Calibration out of pool" in result.stdout and "Reliability of rank's P(top 3)" in result.stdout


@pytest.mark.parametrize("args, fragments", [
    (["--calibration", "--pool-size", "24"], ["--pool-size 24", "largest lineage"]),
    (["--budget", "3", "--pool-size", "24"], ["--pool-size 24", "largest lineage"]),
    (["--calibration", "--pool-size", "3"], ["--pool-size 3", "must be 4 to"]),
])
def test_pools_too_large_for_the_method_are_one_line(run, args, fragments):
    # 42 regression bases, 11 of them Qwen: a pool of 24 leaves 18 outside, 7 once Qwen is held out (< 8)
    assert_one_line_error(run("evaluate", "--no-baselines", "--bootstrap", "0", *args), *fragments)


def test_no_candidate_without_a_prediction_is_ever_proposed():
    error = P.Error(0.0, 1.0, 1.0, 1000.0, 0.0)
    with pytest.raises(DataError, match="no prediction"):
        Y.Belief(P.Predictive(np.array([70.0, np.nan]), np.ones(2), np.arange(2), error), np.full(2, np.nan))
