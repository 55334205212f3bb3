"""Metrics by hand on tiny inputs, and the numpy baselines against slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictor.models import metrics as M
from predictor.models.baselines import elastic_net_fit


def test_spearman_and_kendall_by_hand():
    pred, true = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])
    assert M.spearman(pred, true) == pytest.approx(0.5)  # 1 - 6·(0+1+1)/(3·8)
    assert M.kendall(pred, true) == pytest.approx(1 / 3)  # 2 concordant, 1 discordant of 3 pairs
    assert math.isnan(M.spearman(np.ones(3), true))


def test_ranks_average_ties():
    np.testing.assert_array_equal(M.ranks(np.array([10.0, 20.0, 10.0, 30.0])), [1.5, 3.0, 1.5, 4.0])


def test_kendall_tau_b_with_ties_by_hand():
    # pairs: (0,1) tie in pred; (0,2) +; (1,2) +  → n_c - n_d = 2; tau_b = 2 / sqrt(2 · 3)
    assert M.kendall(np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / math.sqrt(6))


def test_coverage_regret_and_best_of_3_by_hand():
    true = np.array([90.0, 80.0, 70.0, 60.0, 50.0])
    pred = np.array([1.0, 5.0, 4.0, 3.0, 2.0])  # predicts index 1 best, index 0 worst
    assert M.coverage_at_k(pred, true, 3) == pytest.approx(2 / 3)  # true top3 {0,1,2}, predicted {1,2,3}
    assert M.regret_at(pred, true, 1) == pytest.approx(10.0)  # picks 80 instead of 90
    assert M.regret_at(pred, true, 3) == pytest.approx(10.0)  # best of {80, 70, 60}
    assert M.regret_at(-pred, true, 1) == pytest.approx(0.0)


def test_selection_metrics_per_bucket():
    true = np.array([90.0, 80.0, 70.0, 60.0])
    pred = np.array([1.0, 2.0, 4.0, 3.0])
    buckets = np.array(["a", "a", "b", "b"])
    out = M.selection_metrics(pred, true, buckets)
    assert out["regret@1[a]"] == pytest.approx(10.0)
    assert out["regret@1[b]"] == pytest.approx(0.0)
    assert out["regret@1/bucket"] == pytest.approx(5.0)
    assert out["regret@1/pooled"] == pytest.approx(20.0)


def test_interval_halfwidth_is_the_quantile_of_absolute_residuals():
    r = np.array([5.0, -1.0, 2.0, -4.0, 3.0, 0.5, -2.5, 1.5, 6.0])  # |r| sorted: .5 1 1.5 2 2.5 3 4 5 6
    assert M.interval_halfwidth(r, 0.5) == pytest.approx(2.5)  # the median
    assert M.interval_halfwidth(r, 0.75) == pytest.approx(4.0)  # position 0.75·8 = 6 → 7th smallest
    assert M.interval_halfwidth(np.array([]), 0.8) == math.inf


def test_group_bootstrap_is_deterministic_and_brackets_the_point_value():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    groups = np.repeat(np.arange(8), 5)

    def stat(rows):
        return {"mean": float(values[rows].mean())}

    a = M.group_bootstrap(groups, stat, n_boot=300, seed=1)
    b = M.group_bootstrap(groups, stat, n_boot=300, seed=1)
    assert a == b
    assert a[0]["mean"] < values.mean() < a[1]["mean"]


def _coordinate_descent(X, y, alpha, l1_ratio, passes=3000):
    """Slow, obviously-correct reference for scikit-learn's ElasticNet objective."""
    n, p = X.shape
    mx, my = X.mean(0), y.mean()
    Xc, r = X - mx, y - my
    norms = (Xc * Xc).sum(0) / n
    w = np.zeros(p)
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    for _ in range(passes):
        for j in range(p):
            rho = Xc[:, j] @ r / n + norms[j] * w[j]
            new = np.sign(rho) * max(abs(rho) - l1, 0.0) / (norms[j] + l2)
            r = r - Xc[:, j] * (new - w[j])
            w[j] = new
    return my - mx @ w, w


@pytest.mark.parametrize("alpha, l1_ratio", [(0.1, 0.5), (0.01, 1.0), (0.1, 0.0)])
def test_elastic_net_matches_coordinate_descent(alpha, l1_ratio):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(35, 12))
    y = 2 * X[:, 0] - X[:, 3] + rng.normal(size=35)
    b1, w1 = elastic_net_fit(X, y, alpha, l1_ratio, n_iter=20000)
    b2, w2 = _coordinate_descent(X, y, alpha, l1_ratio)
    np.testing.assert_allclose(w1, w2, atol=1e-4)
    assert b1 == pytest.approx(b2, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=3, max_size=20), st.integers(0, 2**31 - 1))
def test_spearman_is_invariant_to_monotone_maps_and_bounded(xs, seed):
    x = np.array(xs, dtype=float)
    y = np.random.default_rng(seed).permutation(x)
    rho = M.spearman(x, y)
    if not math.isnan(rho):
        assert -1 - 1e-9 <= rho <= 1 + 1e-9
        assert M.spearman(np.exp(x / 500), y) == pytest.approx(rho)  # strictly increasing, ties kept
