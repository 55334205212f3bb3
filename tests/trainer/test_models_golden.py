"""Committed golden fixtures: tiny HF classifiers + what transformers computed, checked without torch."""

import json
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from trainer_jax.models.hf_import import load_causal_lm, load_reward_model  # noqa: E402

MODELS = Path(__file__).parent / "fixtures" / "models"
TOL = 1e-4
rewards_fn = nnx.jit(lambda model, ids, mask: model(ids, mask))  # (B, 1)
hidden_fn = nnx.jit(lambda model, ids, mask: model.model(ids, mask))  # (B, T, D)


@pytest.mark.parametrize("name", ["qwen2-rm", "gemma2-rm"])
def test_golden_rewards_and_hidden_states(name):
    expected = json.loads((MODELS / name / "expected.json").read_text())
    ids = np.asarray(expected["input_ids"], np.int32)  # (B, T), left padded
    mask = np.asarray(expected["attention_mask"], np.int32)  # (B, T)
    model = load_reward_model(MODELS / name)
    np.testing.assert_allclose(np.asarray(rewards_fn(model, ids, mask))[:, 0], expected["rewards"], rtol=0, atol=TOL)
    hidden = np.asarray(hidden_fn(model, ids, mask))[:, -4:, :4]  # same slice as make_fixtures.py stores
    np.testing.assert_allclose(hidden, expected["hidden_last4"], rtol=0, atol=TOL)
    flipped_ids, flipped_mask = _to_right_padding(ids, mask)
    np.testing.assert_allclose(
        np.asarray(rewards_fn(model, flipped_ids, flipped_mask))[:, 0], expected["rewards"], rtol=0, atol=TOL
    )


def _to_right_padding(ids, mask):
    out_ids, out_mask = np.zeros_like(ids), np.zeros_like(mask)
    for row in range(ids.shape[0]):
        real = ids[row][mask[row] == 1]
        out_ids[row, : len(real)], out_mask[row, : len(real)] = real, 1
    return out_ids, out_mask


def test_tied_classifier_loads_as_causal_lm():
    """Qwen2/Gemma-2 tie the LM head to the embedding, so a classifier dir still yields logits."""
    lm = load_causal_lm(MODELS / "gemma2-rm")
    ids = np.array([[5, 6, 7]], np.int32)
    logits = np.asarray(nnx.jit(lambda m, i, k: m.logits(m(i, k)))(lm, ids, np.ones_like(ids)))
    assert logits.shape == (1, 3, lm.cfg.vocab_size)
    assert np.abs(logits).max() <= lm.cfg.final_logit_softcap  # soft-capped


def test_bf16_compute_stays_close_to_fp32_reference():
    expected = json.loads((MODELS / "gemma2-rm" / "expected.json").read_text())
    ids = np.asarray(expected["input_ids"], np.int32)
    mask = np.asarray(expected["attention_mask"], np.int32)
    model = load_reward_model(MODELS / "gemma2-rm", dtype="bfloat16")  # fp32 params, bf16 compute
    rewards = np.asarray(rewards_fn(model, ids, mask))[:, 0]
    assert rewards.dtype == np.float32
    np.testing.assert_allclose(rewards, expected["rewards"], atol=0.1)
