"""The predictive distribution behind rank and plan (issue 20): the t helpers against known values, the fit
on data drawn from known models, P(top k) joint and bounded, and the order the method ranks by kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictor.models import predictive as P
from predictor.models import student as S

# ---- Student t without scipy ---------------------------------------------------------------------


@pytest.mark.parametrize("dof, q, expected", [
    (3.0, 0.9, 1.637744), (3.0, 0.975, 3.182446), (10.0, 0.95, 1.812461), (1000.0, 0.9, 1.282301),
    (2.5, 0.99, 5.353111),  # by a 2-million-point integration of the density
])
def test_t_quantiles_match_tables(dof, q, expected):
    assert float(S.ppf(q, dof)) == pytest.approx(expected, rel=2e-4)


@settings(max_examples=40, deadline=None)
@given(dof=st.sampled_from(P.DOFS), q=st.floats(0.001, 0.999))
def test_cdf_inverts_ppf(dof, q):
    assert float(S.cdf(S.ppf(q, dof), dof)) == pytest.approx(q, abs=1e-5)


@pytest.mark.parametrize("dof", [2.5, 4.0, 30.0])
def test_quadrature_moments(dof):
    t, w = S.nodes(dof)
    assert w.sum() == pytest.approx(1.0) and np.sum(w * t) == pytest.approx(0.0, abs=1e-9)
    assert np.sum(w * t * t) == pytest.approx(dof / (dof - 2), rel=0.02)  # the variance (heavy tails: looser)
    assert np.sum(w * np.maximum(t, 0)) == pytest.approx(S.mean_positive(dof), rel=1e-3)


# ---- the fit on data from known models -------------------------------------------------------------


def synthetic(rng, n_lineages=9, per=5, slope=1.0, noise=lambda r, n: r.normal(0, 4, n), rho=0.0):
    lineage = np.repeat(np.arange(n_lineages), per).astype(str)
    level = rng.normal(75, 6, n_lineages * per)
    shared = rng.normal(0, 4 * math.sqrt(rho), n_lineages)[lineage.astype(int)]
    y = 75 + slope * (level - 75) + shared + noise(rng, len(level)) * math.sqrt(1 - rho)
    return level, y, lineage


def test_a_calibrated_method_keeps_its_slope_and_covers_its_level():
    rng = np.random.default_rng(0)
    level, y, lineage = synthetic(rng, n_lineages=12)
    cal = P.fit(level, y, lineage)
    assert not cal.no_skill and cal.slope > 0.8 and abs(cal.bend) < 0.3
    dist = P.predictive(cal, level, np.ones(len(level)), np.zeros(len(level), int))
    low, high = dist.interval(P.LEVEL)
    assert np.mean((y >= low) & (y <= high)) == pytest.approx(P.LEVEL, abs=0.08)  # the level, in sample
    assert cal.error.dof >= 6  # normal data: light tails


def test_no_skill_flattens_the_mean_and_top_k_falls_to_the_base_rate():
    rng = np.random.default_rng(1)
    level, y, lineage = synthetic(rng, slope=0.0)
    cal = P.fit(level, y, lineage)
    assert cal.no_skill
    pool = np.linspace(60, 90, 12)
    mean, low, high, p_top = P.rank_view(cal, pool, np.ones(12), np.arange(12), 0.8, 3, seed=0)
    assert np.ptp(mean) < 0.2 * np.ptp(pool)
    assert np.all(np.abs(p_top - 3 / 12) < 0.08)


def test_a_left_skewed_error_gets_a_longer_lower_half():
    rng = np.random.default_rng(2)
    level, y, lineage = synthetic(rng, n_lineages=12, noise=lambda r, n: 3 - r.exponential(3, n))
    error = P.fit(level, y, lineage).error
    assert error.low > 1.3 * error.high
    t, w = S.nodes(error.dof)
    assert np.sum(w * (error.loc + np.where(t < 0, error.low, error.high) * t)) == pytest.approx(0.0, abs=1e-6)


def test_over_predicted_tops_bend_the_mean_down():
    rng = np.random.default_rng(3)
    level, y, lineage = synthetic(rng, n_lineages=12, per=6)
    y = y - 0.8 * np.maximum(level - np.quantile(level, 0.75), 0)  # the best-looking bases disappoint
    cal = P.fit(level, y, lineage)
    assert cal.bend < -0.3 and cal.mean(np.array([95.0]))[0] < 95.0 - 5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), slope=st.floats(-1.0, 2.0))
def test_the_mean_keeps_the_methods_order(seed, slope):
    rng = np.random.default_rng(seed)
    level, y, lineage = synthetic(rng, slope=slope)
    cal = P.fit(level, y, lineage)
    raw = np.sort(rng.normal(75, 20, 50))
    assert np.all(np.diff(cal.mean(raw)) > 0)  # strictly increasing: rank's order is the method's
    assert np.all(cal.stretch(raw) >= 1.0)


def test_the_calibration_round_trips_through_json():
    import json

    rng = np.random.default_rng(4)
    cal = P.fit(*synthetic(rng))
    assert P.Calibration.from_json(json.loads(json.dumps(cal.to_json()))) == cal


def test_extrapolation_widens_the_interval():
    rng = np.random.default_rng(5)
    cal = P.fit(*synthetic(rng))
    low, high = P.predictive(cal, np.array([75.0, 140.0]), np.ones(2), np.arange(2)).interval(0.8)
    assert high[1] - low[1] > high[0] - low[0]


# ---- P(top k): joint, bounded, beyond the stored residuals ---------------------------------------


def error(rho=0.0, dof=4.0, low=3.0, high=2.0):
    return P.Error(-(high - low) * S.mean_positive(dof), low, high, dof, rho)


@pytest.mark.parametrize("k", [1, 3])
def test_top_k_sums_to_k_and_follows_the_order(k):
    mean = np.linspace(70, 80, 20)
    p = P.Predictive(mean, np.ones(20), np.arange(20), error()).top_k(k, np.random.default_rng(0))
    assert p.sum() == pytest.approx(k, abs=0.03)  # in expectation (Rao–Blackwell), not draw by draw
    assert np.all(np.diff(p[5:]) >= -0.03) and p[-1] > p[0]


def test_far_behind_candidates_keep_a_positive_chance_and_a_large_pool_agrees_with_more_draws():
    n = 1500
    rng = np.random.default_rng(6)
    mean = rng.normal(70, 6, n)
    dist = P.Predictive(mean, np.ones(n), rng.integers(0, 300, n), error(rho=0.3))
    p = dist.top_k(3, np.random.default_rng(1))
    assert np.all(p > 0)  # the t tail, not a finite set of stored residuals
    assert p.sum() == pytest.approx(3, abs=0.05)
    y = dist.draws(4000, np.random.default_rng(2))  # (D, N) every candidate jointly, more draws
    exact = (y >= -np.partition(-y, 2, axis=1)[:, 2:3]).mean(axis=0)
    top = np.argsort(-mean)[:20]
    np.testing.assert_allclose(p[top], exact[top], atol=0.05)


def test_siblings_move_together():
    dist = P.Predictive(np.array([75.0, 75.0, 75.0]), np.ones(3), np.array([0, 0, 1]), error(rho=0.8))
    y = dist.draws(20_000, np.random.default_rng(0))
    corr = np.corrcoef(y.T)
    assert corr[0, 1] > 0.6 and abs(corr[0, 2]) < 0.05
