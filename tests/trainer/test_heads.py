"""Reward heads: pooling from the mask, one forward for chosen + rejected, padding invariance (hypothesis)."""

from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")
hypothesis = pytest.importorskip("hypothesis")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from trainer_jax.models.heads import (  # noqa: E402
    RewardModel,
    concat_pairs,
    pair_rewards,
)
from trainer_jax.models.decoder import REMAT_POLICIES, Execution  # noqa: E402
from trainer_jax.models.hf_import import load_reward_model  # noqa: E402

GOLDEN = Path(__file__).parent / "fixtures" / "models"
forward = nnx.jit(lambda model, ids, mask: model(ids, mask))


MODEL = None


def _model() -> RewardModel:
    global MODEL
    if MODEL is None:  # random tiny gemma2: sliding window 6 and soft-capping make the padding test strict
        MODEL = load_reward_model(GOLDEN / "gemma2-rm")
    return MODEL


def test_packing_puts_real_tokens_first_whatever_the_padding():
    mask = jnp.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]])
    ids = jnp.arange(25, dtype=jnp.int32).reshape(5, 5) + 3
    _, lengths, order = nnx.jit(lambda m, i, k: m.model.packed(i, k))(_model(), ids, mask)
    np.testing.assert_array_equal(lengths, [3, 3, 5, 2, 1])  # an empty row counts one token
    np.testing.assert_array_equal(order[:, :1], [[0], [2], [0], [1], [0]])  # first real token first
    np.testing.assert_array_equal(order[3, :2], [1, 3])  # a hole in the middle is skipped


def test_pad_id_equal_to_content_tokens_does_not_move_pooling():
    """Pooling reads the mask only: a pad id that also occurs as a real token (pad == eos) is harmless."""
    model = _model()
    seq = np.array([5, 9, 1, 7, 1], np.int32)  # id 1 plays eos and pad
    alone = forward(model, seq[None], np.ones((1, 5), np.int32))
    padded = np.concatenate([seq, [1, 1, 1]])[None]
    mask = np.array([[1] * 5 + [0] * 3], np.int32)
    np.testing.assert_allclose(forward(model, padded, mask), alone, atol=1e-5)


def test_pair_rewards_is_one_forward_of_both():
    model = load_reward_model(GOLDEN / "qwen2-rm")
    c_ids, c_mask = jnp.array([[4, 5, 6, 7]]), jnp.array([[1, 1, 1, 1]])
    r_ids, r_mask = jnp.array([[8, 9]]), jnp.array([[1, 1]])
    ids, mask = concat_pairs(c_ids, c_mask, r_ids, r_mask)
    assert ids.shape == (2, 4) and mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    rc, rr = nnx.jit(pair_rewards)(model, c_ids, c_mask, r_ids, r_mask)
    assert rc.shape == rr.shape == (1, 1) and rc.dtype == jnp.float32
    both = forward(model, ids, mask)  # (2, 1): the same single batch
    np.testing.assert_array_equal(rc, both[:1])
    np.testing.assert_array_equal(rr, both[1:])


def test_bf16_compute_keeps_fp32_params_and_head():
    model = load_reward_model(GOLDEN / "qwen2-rm", dtype=jnp.bfloat16)
    assert model.model.layers.self_attn.q_proj.kernel[...].dtype == jnp.float32  # (L, D, N*H) stacked
    hidden = nnx.jit(lambda m, i, k: m.model(i, k))(model, jnp.array([[3, 4, 5]]), jnp.array([[1, 1, 1]]))
    out = forward(model, jnp.array([[3, 4, 5]]), jnp.array([[1, 1, 1]]))
    assert hidden.dtype == jnp.bfloat16 and out.dtype == jnp.float32 and out.shape == (1, 1)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    tokens=st.lists(st.integers(3, 290), min_size=1, max_size=10),
    pad=st.integers(0, 5),
    left=st.booleans(),
    others=st.lists(st.integers(1, 10), min_size=0, max_size=2),
)
def test_reward_invariant_to_padding_side_amount_and_batch(tokens, pad, left, others):
    model = _model()
    seq = np.array(tokens, np.int32)
    alone = np.asarray(forward(model, seq[None], np.ones((1, len(seq)), np.int32)))[0]  # (1,)
    rng = np.random.default_rng(len(tokens) + pad)
    lengths = [len(seq), *others]
    t = max(lengths) + pad
    ids = np.zeros((len(lengths), t), np.int32)
    mask = np.zeros((len(lengths), t), np.int32)
    for row, n in enumerate(lengths):
        row_tokens = seq if row == 0 else rng.integers(3, 290, size=n)
        sl = slice(t - n, t) if left else slice(0, n)
        ids[row, sl], mask[row, sl] = row_tokens, 1
    batched = np.asarray(forward(model, ids, mask))[0]
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-6)  # fp32: only summation order differs


def test_every_remat_policy_gives_the_same_rewards_and_gradients():
    model = load_reward_model(GOLDEN / "qwen2-rm")
    ids, mask = jnp.array([[0, 4, 5, 6], [7, 8, 9, 10]]), jnp.array([[0, 1, 1, 1], [1, 1, 1, 1]])

    def loss(m, policy):
        rc, rr = pair_rewards(m, ids[:1], mask[:1], ids[1:], mask[1:], Execution(remat=policy))
        return -jnp.mean(jax.nn.log_sigmoid(rc - rr))

    grads = {p: jax.tree.leaves(nnx.jit(nnx.grad(loss), static_argnums=1)(model, p)) for p in REMAT_POLICIES}
    for policy in ("full", "dots"):
        for a, b in zip(grads["none"], grads[policy]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # fp32, different fusion only
