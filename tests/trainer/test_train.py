"""Acceptance: `basepick train` on a tiny random Llama learns a synthetic preference, exports a model that
transformers loads unchanged with the same accuracy, scores RewardBench rows and appends a label row."""

import csv
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402

from predictor.data.labels import load_labels  # noqa: E402
from trainer_jax.data.tokenizer import load_tokenizer  # noqa: E402

MODEL_ID = "Qwen/Qwen2.5-0.5B-Instruct"  # a base the shipped snapshot knows, so `validate` can predict it


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return B.workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(ws, tmp_path_factory):
    """One CLI training run shared by the acceptance tests: (click result, run dir, labels file)."""
    from click.testing import CliRunner

    import cli

    out_root = tmp_path_factory.mktemp("accept")
    labels = out_root / "labels.csv"
    args = ["train", ws / "base", "--data", ws / "train.jsonl", "--eval-data", ws / "val.jsonl",
            "--recipe", "bradley_terry", "--out", out_root / "run", "--lr", "1e-3", "--epochs", "2",
            "--batch-size", "16", "--micro-batch", "8", "--max-length", "64", "--dtype", "float32",
            "--warmup-steps", "2", "--eval-every", "6", "--rewardbench", ws / "rb.jsonl",
            "--labels-out", labels, "--model-id", MODEL_ID, "--train-data-name", "synthetic-marker",
            "--format", "json"]
    result = CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)
    return result, out_root / "run", labels


def _val_pairs(ws):
    from trainer_jax.data import encode, schemas

    tok = load_tokenizer(ws / "base")
    val = encode.tokenize_preferences(schemas.read_examples(ws / "val.jsonl", "preference").items, tok, encode.TokenizeConfig(max_length=64))
    return val


def test_train_reaches_accuracy_and_writes_run_dir(trained):
    result, run_dir, _ = trained
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["finished"] and summary["best_accuracy"] >= 0.9, summary
    assert summary["initial_accuracy"] < 0.75 and "validation accuracy before training (step 0)" in result.stderr
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["labels.csv", "run"]  # no .partial left
    assert {"config.json", "metrics.jsonl", "model", "summary.json", "rewardbench.json"} <= {p.name for p in run_dir.iterdir()}
    assert not (run_dir / "run" / "checkpoints").exists()  # resume checkpoints dropped once finished
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["recipe"] == "bradley_terry" and config["config"]["global_batch"] == 16
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_accuracy" in r]
    assert [r["step"] for r in steps] == list(range(1, len(steps) + 1))
    assert all(r["tokens_per_s"] > 0 and 0 <= r["accuracy"] <= 1 for r in steps)
    assert evals[0] == {"lr": None, "step": 0, "eval_accuracy": summary["initial_accuracy"]}
    assert max(r["eval_accuracy"] for r in evals) == summary["best_accuracy"]
    assert steps[-1]["loss"] < steps[0]["loss"]


def test_exported_model_reproduces_accuracy_in_jax_and_transformers(trained, ws):
    _, run_dir, _ = trained
    summary = json.loads((run_dir / "summary.json").read_text())
    val = _val_pairs(ws)
    # JAX reload of the exported directory
    from trainer_jax.evals.score import reward_sequences
    from trainer_jax.models.hf_import import load_reward_model

    flat = [seq for pair in val.sequences for seq in pair]  # chosen, rejected, chosen, ...
    rewards = reward_sequences(load_reward_model(run_dir / "model"), flat, 16, (64,))  # (2N, 1)
    jax_rewards = rewards[:, 0].reshape(-1, 2)  # (N, 2)
    assert np.mean(jax_rewards[:, 0] > jax_rewards[:, 1]) == pytest.approx(summary["best_accuracy"])

    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    hf_rewards = []
    for side in (0, 1):  # right-padded batches; transformers pools at the last non-pad token
        seqs = [pair[side] for pair in val.sequences]
        ids = torch.zeros((len(seqs), max(map(len, seqs))), dtype=torch.long)  # pad id 0 never occurs inside
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        with torch.no_grad():
            hf_rewards.append(hf(input_ids=ids, attention_mask=mask).logits[:, 0].numpy())
    hf_rewards = np.stack(hf_rewards, axis=1)  # (N, 2)
    assert np.mean(hf_rewards[:, 0] > hf_rewards[:, 1]) == pytest.approx(summary["best_accuracy"])
    np.testing.assert_allclose(hf_rewards, jax_rewards, atol=1e-4)


def test_label_row_is_accepted_by_the_predictor(trained, tmp_path):
    result, run_dir, labels = trained
    (label,) = load_labels([labels])
    # the fixture's RewardBench rows cover one subset per section: a partial evaluation, marked as such
    assert (label.model_id, label.recipe, label.train_data, label.eval) == (
        MODEL_ID, "bradley_terry", "synthetic-marker", "rewardbench-v1-partial")
    rb = json.loads((run_dir / "rewardbench.json").read_text())
    assert label.values["score"] == pytest.approx(100 * rb["overall"], abs=1e-3)
    assert label.values["chat_hard"] == pytest.approx(100 * rb["sections"]["Chat Hard"], abs=1e-3)
    with labels.open(newline="") as f:
        row = next(csv.DictReader(f))
    assert row["run_dir"] == str(run_dir.absolute()) and float(row["lr"]) == 1e-3 and row["seed"] == "0"
    assert int(row["steps"]) > 0 and row["basepick_version"]
    # how the label was made: one learning rate, over-length examples, RewardBench's length and dtype
    assert row["lrs_tried"] == "1" and "the label comes from one learning rate" in result.stderr
    assert (row["max_length"], row["over_length"], row["train_examples"], row["eval_examples"]) == ("64", "drop", "192", "48")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert int(row["train_dropped"]) == summary["data"]["train_filtered"] and row["train_truncated"] == "0"
    assert (row["rewardbench_max_length"], row["rewardbench_dtype"]) == ("64", "float32")
    assert float(row["initial_val_accuracy"]) == pytest.approx(summary["initial_accuracy"], abs=1e-6)
    assert "RewardBench scored in float32 at --max-length 64" in result.stderr
    # appending again with the same key replaces the row, other rows stay
    from trainer_jax.evals.labels import append_label

    seed = tmp_path / "l.csv"
    seed.write_text(labels.read_text())
    append_label(seed, {"model_id": "x/y", "recipe": "regression", "train_data": "d", "eval": "rewardbench-v1",
                        "chat": 1.0, "chat_hard": 2.0, "safety": 3.0, "reasoning": 4.0, "score": 2.5})
    assert append_label(seed, {**dict(row), **dict.fromkeys(("chat", "chat_hard", "safety", "reasoning", "score"), "50.0")})
    assert sorted(lab.model_id for lab in load_labels([seed])) == sorted([MODEL_ID, "x/y"])


def test_validate_reads_the_new_label(trained, run):
    _, _, labels = trained
    result = run("validate", labels, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (row,) = report["rows"]
    assert row["model_id"] == MODEL_ID and row["predicted_rank"] == row["measured_rank"] == 1
    assert row["error"] == pytest.approx(row["predicted"]["score"] - row["measured"]["score"], abs=1e-3)
