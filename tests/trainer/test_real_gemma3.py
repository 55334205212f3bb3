"""Gemma-3-270M's real weights: our decoder against transformers, and two optimizer steps of the trainer.

The weights come from ``python -m tests.real_weights`` (the ``real_model`` fixture skips without them). The
tiny random parity tests cover every switch; this one shows the switches add up to the released model: 18
layers, 5 local (512-token windows, RoPE base 10k) : 1 global (base 1M) layers, head_dim 256, q/k norms,
tied 262k-row embedding.
"""

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("transformers")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

pytestmark = pytest.mark.real_model

TOL = 1e-5  # hidden states, relative to their largest magnitude on real tokens
TEXTS = [
    "Reward models rank answers: a chosen answer should score higher than a rejected one.",
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog. " * 3,
]


def _batch(tokenizer, side: str):
    """The texts tokenized (with bos) and padded on ``side`` with pad id 0: ids, mask (B, T) int32."""
    rows = [tokenizer(text)["input_ids"] for text in TEXTS]
    t = max(map(len, rows))
    ids = np.zeros((len(rows), t), np.int32)
    mask = np.zeros((len(rows), t), np.int32)
    for i, row in enumerate(rows):
        sl = slice(0, len(row)) if side == "right" else slice(t - len(row), t)
        ids[i, sl], mask[i, sl] = row, 1
    return ids, mask


def test_gemma3_270m_matches_transformers_and_trains(real_model):
    """One load of the weights (1 GB in fp32) for both checks, so the test stays near a minute on 2 cores:

    * the final hidden states of left- and right-padded batches equal transformers' within 1e-5 relative;
    * two optimizer steps of the trainer's own train step (BT loss, AdamW, remat full) on those tokens give
      finite losses and move every parameter, finitely.
    """
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.trainer.fixtures.train.builders import tiny_config
    from trainer_jax.models.hf_import import load_reward_model
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps

    path = real_model("gemma-3-270m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = load_reward_model(path, dtype=jnp.float32, seed=0)  # the base LM's backbone and a fresh head
    assert model.cfg.family == "gemma3" and model.cfg.layer_windows.count(None) == 3 and model.cfg.head_dim == 256

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    hidden_fn = nnx.jit(lambda model, ids, mask: model.model(ids, mask))  # (B, T, D)
    for side in ("left", "right"):
        ids, mask = _batch(tokenizer, side)
        with torch.no_grad():
            ids_t, mask_t = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
            pos = torch.clamp(torch.cumsum(mask_t, -1) - 1, min=0)
            expected = hf.model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos).last_hidden_state.numpy()
        real = mask.astype(bool)
        error = np.abs(np.asarray(hidden_fn(model, ids, mask)) - expected)[real].max() / np.abs(expected[real]).max()
        assert error <= TOL, (side, error)
    del hf  # 1 GB back before training

    ids, mask = np.concatenate([ids, ids[::-1]]), np.concatenate([mask, mask[::-1]])  # (6, T) chosen, rejected
    config = tiny_config(global_batch=3, micro_batch=3, warmup_steps=0, remat="full", lr=1e-5)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    steps = build_steps(graphdef, params, rest, config, Schedule(total_steps=2, last_k=1), M.make_mesh(), "xla")
    opt_state = steps.init_opt(params, config.lr)
    before = jax.tree.map(np.array, params)  # copies: params are donated
    losses = []
    for _ in range(2):
        params, opt_state, metrics = steps.train_step(params, opt_state, ids, mask, np.ones(3, bool),
                                                      np.zeros(3, np.float32))
        losses.append(float(metrics["loss"]))
    assert all(np.isfinite(losses)), losses
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(params)):
        b = np.asarray(b)
        assert np.isfinite(b).all() and not np.array_equal(a, b)
