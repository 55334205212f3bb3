"""fp32 parity of trainer_jax decoders with transformers (tiny random models, CPU torch, no network)."""


import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")
pytest.importorskip("torch")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from tests.trainer.fixtures import make_fixtures as builders  # noqa: E402  (torch imported lazily)
from trainer_jax.models.hf_import import load_causal_lm, load_reward_model  # noqa: E402

TOL = 1e-5  # acceptance in fp32: rewards absolute; hidden states and logits relative to their largest value
FAMILIES = ["llama", "llama_bias", "mistral", "qwen2", "gemma2", "phi3", "qwen3", "gemma3", "gemma3_multimodal",
            "olmo2", "olmo3", "smollm3", "gemma", "stablelm", "nemotron", "ministral"]
# The causal-LM test checks the LM head's import (tied, untied, soft-capped, under a multimodal prefix).
CAUSAL = ["llama", "llama_bias", "mistral", "qwen2", "gemma2", "phi3", "gemma3_multimodal", "smollm3"]
# Rows of 5, 40 and 17 tokens: 40 > the 16-token llama3 "original" context and > the 6-token windows.
LENGTHS = (5, 40, 17)
hidden_fn = nnx.jit(lambda model, ids, mask: model(ids, mask))  # CausalLM (B, T, D)
backbone_fn = nnx.jit(lambda model, ids, mask: model.model(ids, mask))  # RewardModel's backbone (B, T, D)
logits_fn = nnx.jit(lambda model, hidden: model.logits(hidden))  # (B, T, V)


def _masked_max(a, b, mask):
    """Largest difference on real tokens, relative to the reference's largest magnitude (at least 1)."""
    scale = max(1.0, float(np.abs(b * mask[..., None]).max()))
    return float(np.abs((np.asarray(a) - b) * mask[..., None]).max()) / scale


@pytest.mark.parametrize("family", FAMILIES)
def test_classifier_parity_both_padding_sides(family, tmp_path):
    hf = builders.build_hf_model(family, "classifier", tmp_path, seed=0)
    model = load_reward_model(tmp_path)
    for side in ("left", "right"):
        ids, mask = builders.padded_batch(LENGTHS, side, seed=3)
        hidden, rewards = builders.hf_forward(hf, ids, mask)
        assert _masked_max(backbone_fn(model, ids, mask), hidden, mask) <= TOL
        np.testing.assert_allclose(np.asarray(hidden_fn(model, ids, mask)), rewards, rtol=0, atol=TOL)


@pytest.mark.parametrize("family", CAUSAL)
def test_causal_lm_parity_hidden_and_logits(family, tmp_path):
    hf = builders.build_hf_model(family, "causal", tmp_path, seed=1)
    lm = load_causal_lm(tmp_path)
    ids, mask = builders.padded_batch(LENGTHS, "left", seed=4)
    hidden, logits = builders.hf_forward(hf, ids, mask)
    ours = hidden_fn(lm, ids, mask)
    assert _masked_max(ours, hidden, mask) <= TOL
    assert _masked_max(logits_fn(lm, ours), logits, mask) <= TOL


def test_reward_model_from_causal_lm_matches_backbone(tmp_path):
    """A base LM dir gives a RewardModel whose backbone is the LM's; the fresh head is seeded."""
    hf = builders.build_hf_model("llama", "causal", tmp_path, seed=2)
    ids, mask = builders.padded_batch((7, 30), "right", seed=5)
    hidden, _ = builders.hf_forward(hf, ids, mask)
    a = load_reward_model(tmp_path, num_labels=3, seed=7)
    b = load_reward_model(tmp_path, num_labels=3, seed=7)
    assert _masked_max(a.model(ids, mask), hidden, mask) <= TOL
    assert np.asarray(a(ids, mask)).shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(a.score.kernel[...]), np.asarray(b.score.kernel[...]))
