"""The real-model tier: real pretrained weights through the trainer, on real preference pairs.

SmolLM2-135M-Instruct (Llama architecture) from ``tests/real_weights.py``; skips when the converted weights
are absent (``python -m tests.real_weights``; ``.ci/run`` makes them). Sized for 2 CPU cores: sequences of
at most 80 tokens, one Bradley-Terry run of 8 optimizer steps on 64 real HH-RLHF pairs (shared by the
export test), a 4-step run for the resume test. Gemma-3-270M joins the parity test once its architecture
is supported; until then the test asserts its one-line refusal.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("transformers")

from predictor.errors import ArtifactError  # noqa: E402
from tests.conftest import assert_one_line_error  # noqa: E402

pytestmark = pytest.mark.real_model

SMOL, GEMMA = "smollm2-135m-instruct", "gemma-3-270m"
PAIRS = Path(__file__).parent / "fixtures" / "preferences" / "hh_rlhf_harmless_short164.jsonl.gz"
N_TRAIN = 64  # the first 64 pairs train; the other 100 are held out
HIDDEN_TOL, REWARD_TOL = 1e-5, 1e-4  # fp32: hidden states relative to their largest value; rewards absolute


def _lines() -> list[str]:
    with gzip.open(PAIRS, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _config():
    """Bradley-Terry on a CPU: 64 pairs in 8 optimizer steps of 8, fp32, no remat, learning rate 1e-4 (the
    recipe's 2e-6 needs thousands of pairs to move a 135M model; this run shows the machinery learns)."""
    from trainer_jax.train.recipes import make_config

    return make_config("bradley_terry", lr=1e-4, global_batch=8, micro_batch=8, warmup_steps=0, eval_every=8,
                       save_every=4, max_length=80, buckets=(48, 80), dtype="float32", remat="none", seed=0)


_RUNS: dict = {}


def _bt_run(base: Path, tmp_path_factory):
    """One training run per session: (result, its directory, the held-out file)."""
    if base not in _RUNS:
        from trainer_jax.train.run import train

        root = tmp_path_factory.mktemp("real_bt")
        lines = _lines()
        train_file = _write(root / "train.jsonl", lines[:N_TRAIN])
        held_out = _write(root / "held.jsonl", lines[N_TRAIN:])
        result = train(base, train_file, held_out, root / "run", _config())
        _RUNS[base] = (result, root / "run", held_out)
    return _RUNS[base]


# ------------------------------------------------------------------------------------------ parity
def _batch(tok, side: str, pad: int):
    """Five real HH conversations as the trainer encodes them, padded on ``side``: ids, mask (B, T) int32."""
    from trainer_jax.data import encode, schemas

    items = schemas.read_examples(PAIRS, "preference").items[N_TRAIN : N_TRAIN + 5]
    seqs = encode.encode(tok, [e.chosen for e in items])
    t = max(map(len, seqs))
    ids, mask = np.full((len(seqs), t), pad, np.int32), np.zeros((len(seqs), t), np.int32)
    for row, s in enumerate(seqs):
        at = slice(0, len(s)) if side == "right" else slice(t - len(s), t)
        ids[row, at], mask[row, at] = s, 1
    return ids, mask


@pytest.mark.parametrize("name", [SMOL, GEMMA])
def test_fp32_parity_with_transformers_on_real_weights(real_model, run, name):
    from trainer_jax.models.config import read_config_json, supported_architecture

    base = real_model(name)
    try:
        supported_architecture(read_config_json(base), base)
    except ArtifactError:  # Gemma 3 until the families work lands: refused in one line, nothing written
        assert name == GEMMA
        result = run("train", base, "--recipe", "bradley_terry", "--dry-run")
        assert_one_line_error(result, "unsupported architecture 'Gemma3ForCausalLM'")
        return
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.trainer.fixtures.make_fixtures import hf_forward
    from trainer_jax.data.tokenizer import load_tokenizer
    from trainer_jax.models.hf_import import load_reward_model

    tok = load_tokenizer(base)
    ours = load_reward_model(base, seed=3)  # a fresh head; the same one goes into transformers' model
    hf = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32).eval()
    with torch.no_grad():
        hf.score.weight.copy_(torch.tensor(np.asarray(ours.score.kernel[...]).T))
    for side in ("right", "left"):
        ids, mask = _batch(tok, side, pad=0)
        assert not (ids[mask == 1] == 0).any()  # the pad id occurs in no row
        hf.config.pad_token_id = 0
        hidden, rewards = hf_forward(hf, ids, mask)  # (B, T, D), (B, 1); positions cumsum(mask) - 1
        mine = np.asarray(ours.model(ids, mask))  # (B, T, D)
        scale = float(np.abs(hidden * mask[..., None]).max())
        relative = float(np.abs((mine - hidden) * mask[..., None]).max()) / scale
        reward_gap = float(np.abs(np.asarray(ours(ids, mask)) - rewards).max())
        print(f"{name} {side} padding: hidden states {relative:.2e} relative, rewards {reward_gap:.2e}")  # -rP shows it
        assert relative <= HIDDEN_TOL and reward_gap <= REWARD_TOL, (side, relative, reward_gap)


# ------------------------------------------------------------------------------- training, export, resume
def test_bradley_terry_on_real_pairs_lifts_held_out_accuracy(real_model, tmp_path_factory):
    result, _, _ = _bt_run(real_model(SMOL), tmp_path_factory)
    assert result.finished and result.data["train"] == N_TRAIN and result.data["eval"] == 100
    # measured 2026-12-07: 55% untrained, 68% after 8 steps (100 held-out pairs)
    print(f"held-out accuracy {result.initial_accuracy:.2f} -> {result.best_accuracy:.2f}")
    assert result.initial_accuracy <= 0.6
    assert result.best_accuracy >= result.initial_accuracy + 0.08, (result.initial_accuracy, result.best_accuracy)


def test_exported_model_in_transformers_equals_basepick_score(real_model, tmp_path_factory, tmp_path):
    """As a user would call it: the exported tokenizer's chat template, batched, padded on either side."""
    pytest.importorskip("torch")
    import json

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainer_jax.data import schemas
    from trainer_jax.evals.score import score_file

    _, run_dir, held_out = _bt_run(real_model(SMOL), tmp_path_factory)
    model_dir = run_dir / "model"
    data = _write(tmp_path / "pairs.jsonl", held_out.read_text(encoding="utf-8").splitlines()[:12])
    ours = score_file(model_dir, data, batch_size=4).rows
    ours = np.array([[r["chosen_score"], r["rejected_score"]] for r in ours])  # (N, 2)

    tok = AutoTokenizer.from_pretrained(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    assert tok.pad_token_id == config["pad_token_id"] != tok.eos_token_id  # SmolLM2's own pad is its eos
    items = schemas.read_examples(data, "preference").items
    texts = [tok.apply_chat_template(list(conv), tokenize=False) for e in items for conv in (e.chosen, e.rejected)]
    hf = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    for side in ("right", "left"):
        tok.padding_side = side
        batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        assert (batch["attention_mask"] == 0).any()  # rows of unequal length: padding is exercised
        with torch.no_grad():
            theirs = hf(**batch).logits[:, 0].numpy().reshape(-1, 2)  # (N, 2)
        print(f"{side} padding: largest |transformers - basepick score| {float(np.abs(theirs - ours).max()):.2e}")
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=REWARD_TOL, err_msg=side)


def test_sigterm_then_resume_gives_bit_identical_parameters(real_model, tmp_path):
    """A run stopped by a real SIGTERM after step 2, then resumed, ends with the uninterrupted run's parameters
    bit for bit. Kept short: 4 optimizer steps of 2 real pairs."""
    from trainer_jax.train.run import train

    base = real_model(SMOL)
    lines = _lines()
    data = _write(tmp_path / "train.jsonl", lines[:8])
    val = _write(tmp_path / "val.jsonl", lines[N_TRAIN : N_TRAIN + 2])
    config = dataclasses.replace(_config(), global_batch=2, micro_batch=2, save_every=100)

    def stop_after_step_2(record):
        if record.get("step") == 2 and "loss" in record:
            os.kill(os.getpid(), signal.SIGTERM)

    full = train(base, data, val, tmp_path / "full", config)
    halted = train(base, data, val, tmp_path / "cut", config, log=stop_after_step_2)
    assert not halted.finished and halted.stopped_by == "SIGTERM" and halted.runs[-1]["steps"] == 2
    resumed = train(base, data, val, tmp_path / "cut", config, resume=True)
    assert full.runs[0]["steps"] == resumed.runs[0]["steps"] == 4
    assert resumed.runs[0]["params_sha256"] == full.runs[0]["params_sha256"]
