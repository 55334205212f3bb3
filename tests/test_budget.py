"""`evaluate --budget`: the simulated decision — regret by hand, the JSON contract, no leakage, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import dataset as DS
from predictor.data import shipped as D
from predictor.evals import budget as BU
from predictor.models import methods as Mt
from tests.conftest import assert_one_line_error

LABELS = [D.benchmarks_dir() / D.LABELS_FILE]


def test_regret_by_hand():
    y = np.array([75.0, 80.0, 70.0, 78.0])
    # train 75 first, then 70, then 80: regret 5, 5, 0
    np.testing.assert_array_equal(BU.regret_after(y, np.array([0, 2, 1, 3]), 3), [5.0, 5.0, 0.0])
    # random: sorted 80, 78, 75, 70; the best of k random runs is v_j with probability C(4-j, k-1)/C(4, k)
    regret, within = BU.random_regret(y, 2)
    assert regret[0] == pytest.approx(80 - (80 + 78 + 75 + 70) / 4)  # 4.25
    assert regret[1] == pytest.approx(80 - (80 * 3 / 6 + 78 * 2 / 6 + 75 * 1 / 6))  # 1.5
    assert within[0] == pytest.approx(0.25) and within[1] == pytest.approx(0.5)  # only 80 is within 1 point


def test_decision_regret_criterion_by_hand():
    # a pool of all three rows (pool size is capped at n - 1 = 2 here: check with n = 3, pool 2, 1 run)
    y = np.array([80.0, 75.0, 70.0])
    regret, within = Mt.decision_regret(np.array([1.0, 2.0, 3.0]), y, pool=2, runs=1, n_pools=3000)
    # pools {0,1}: picks 1 (regret 5); {0,2}: picks 2 (10); {1,2}: picks 2 (5) — each a third of the time
    assert regret == pytest.approx(20 / 3, abs=0.3) and within == 0.0


@pytest.fixture(scope="module")
def budget_json():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.main, ["evaluate", "--no-baselines", "--bootstrap", "50", "--budget", "3",
                                           "--pools", "4", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_budget_json_contract(budget_json):
    b = budget_json["budget"]
    assert b["runs"] == 3 and b["pool_size"] == 12 and b["pools"] == 4
    assert set(b["policies"]) == set(BU.POLICIES)
    for policy, rows in b["policies"].items():
        assert [r["runs"] for r in rows] == [1, 2, 3]
        for r in rows:
            assert r["mean_regret"] >= 0 and 0 <= r["within_1pt"] <= 1
            assert r["mean_regret_ci95"][0] <= r["mean_regret"] + 1e-9 <= r["mean_regret_ci95"][1] + 2e-9
        regrets = [r["mean_regret"] for r in rows]
        assert regrets == sorted(regrets, reverse=True)  # more runs never hurt
    assert budget_json["chosen_method"] in Mt.METHODS
    assert abs(sum(b["chosen_in_pools"].values()) - 1) < 1e-9
    assert {"model_id", "measured", "basepick (LightGBM)"} <= set(budget_json["predictions"][0])


def test_no_pool_label_ever_trains_what_scores_it(monkeypatch):
    """Every fit and every inner evaluation inside a pool's scoring sees only bases outside the pool."""
    ds = DS.load_dataset(LABELS, "regression", "score")
    current = {}
    real_score, real_fit, real_choose = BU._score_pool, Mt.fit, Mt.choose
    seen = []

    def score_pool(ds_, pool, outside, config, seed):
        current["pool"] = {ds_.ids[i] for i in pool}
        return real_score(ds_, pool, outside, config, seed)

    def fit(name, train, config):
        seen.append(set(train.ids) & current["pool"])
        return real_fit(name, train, config)

    def choose(train, config, **kw):
        seen.append(set(train.ids) & current["pool"])
        return real_choose(train, config, **kw)

    monkeypatch.setattr(BU, "_score_pool", score_pool)
    monkeypatch.setattr(Mt, "fit", fit)
    monkeypatch.setattr(Mt, "choose", choose)
    result = BU.simulate(ds, budget=2, n_pools=3, n_boot=0)
    assert len(seen) > 30 and all(not overlap for overlap in seen)
    assert result.regret["plan"].shape == (3, 2)


def test_learned_methods_never_see_the_scored_members_lineage(monkeypatch):
    ds = DS.load_dataset(LABELS, "regression", "score")
    pool = np.arange(12)
    outside = np.arange(12, len(ds.y))
    fits = []
    real_fit = Mt.fit
    monkeypatch.setattr(Mt, "fit", lambda name, train, config: fits.append((name, set(train.lineage.tolist()))) or real_fit(name, train, config))
    BU._score_pool(ds, pool, outside, Mt.ModelConfig(), 0)
    held = {g for name, lineages in fits if name in BU.LEARNED for g in set(ds.lineage.tolist()) - lineages}
    assert set(ds.lineage[pool].tolist()) <= held  # every pool lineage was held out of some learned fit


@pytest.mark.parametrize("args, fragments", [
    (["--budget", "13"], ["--budget 13", "pool size, 12"]),
    (["--budget", "3", "--pool-size", "40"], ["--pool-size 40"]),
    (["--budget", "0"], ["--budget"]),
])
def test_bad_budget_arguments(run, args, fragments):
    assert_one_line_error(run("evaluate", "--no-baselines", "--bootstrap", "0", *args), *fragments)


def test_budget_plot(run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "budget.png"
    result = run("evaluate", "--no-baselines", "--bootstrap", "20", "--budget", "2", "--pools", "2", "--plot", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["budget.png"]
    assert "Budgeted decision" in result.stdout and "plan" in result.stdout
