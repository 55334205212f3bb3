"""Bradley-Terry and regression losses: hand-computed values, strict accuracy, masking of filler rows."""

import math

import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from trainer_jax.train import loss as L  # noqa: E402

RC = jnp.array([1.0, 0.0, 2.0, -5.0])  # (B,) chosen rewards
RR = jnp.array([0.0, 0.0, 1.0, 7.0])  # (B,) rejected rewards
VALID = jnp.array([True, True, True, False])  # last row is filler


def _nll(d):
    return math.log1p(math.exp(-d))  # -log sigmoid(d)


def test_bradley_terry_hand_computed_and_masked():
    loss, m = L.bradley_terry(RC, RR, VALID)
    assert float(loss) == pytest.approx((_nll(1) + _nll(0) + _nll(1)) / 3, rel=1e-6)
    assert float(m["accuracy"]) == pytest.approx(2 / 3)  # the tie (0 vs 0) counts as wrong
    assert float(m["margin"]) == pytest.approx(2 / 3)
    rewards = np.array([1.0, 0.0, 2.0, 0.0, 0.0, 1.0])
    assert float(m["reward_mean"]) == pytest.approx(rewards.mean(), rel=1e-6)
    assert float(m["reward_std"]) == pytest.approx(rewards.std(), rel=1e-6)
    assert float(m["n"]) == 3


def test_margin_and_centering():
    loss, _ = L.bradley_terry(RC, RR, VALID, margin=0.5, center_coef=0.01)
    expected = (_nll(0.5) + _nll(-0.5) + _nll(0.5)) / 3 + 0.01 * (1 + 0 + 9) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_filler_rows_get_no_gradient_and_empty_batches_are_finite():
    grad = jax.grad(lambda rc: L.bradley_terry(rc, RR, VALID)[0])(RC)
    assert float(grad[3]) == 0.0 and float(grad[0]) != 0.0
    loss, m = L.bradley_terry(RC, RR, jnp.zeros(4, bool))
    assert float(loss) == 0.0 and float(m["accuracy"]) == 0.0


def test_bf16_rewards_give_fp32_loss_and_column_rewards_are_accepted():
    loss, m = L.bradley_terry(RC.astype(jnp.bfloat16)[:, None], RR.astype(jnp.bfloat16)[:, None], VALID)
    assert loss.dtype == jnp.float32 and m["accuracy"].dtype == jnp.float32
    assert float(loss) == pytest.approx(float(L.bradley_terry(RC, RR, VALID)[0]), rel=1e-6)


def test_regression_mse_over_five_attributes_masked():
    pred = jnp.array([[1.0, 2.0, 3.0, 4.0, 0.0], [0.0] * 5, [9.0] * 5])  # (B, 5)
    target = jnp.array([[1.0, 2.0, 3.0, 4.0, 2.0], [1.0] * 5, [0.0] * 5])
    loss, m = L.regression(pred, target, jnp.array([True, True, False]))
    assert float(loss) == pytest.approx((4 / 5 + 1) / 2, rel=1e-6)
    assert float(m["mae"]) == pytest.approx((2 / 5 + 1) / 2, rel=1e-6)
