"""`basepick train` option wiring: flags reach TrainConfig and the library call (library call stubbed)."""

import json

import pytest

pytest.importorskip("jax")

import trainer_jax.train.run as T  # noqa: E402
from trainer_jax.train.recipes import LR_GRIDS  # noqa: E402


@pytest.fixture
def captured(monkeypatch):
    calls = {}

    def fake_train(base_dir, data, eval_data, out, config, **kwargs):
        calls.update(base_dir=base_dir, out=out, config=config, **kwargs)
        return T.TrainResult(str(out), True, config.lr, 0.95, None, [], {"train": 3, "train_filtered": 2})

    monkeypatch.setattr(T, "train", fake_train)
    return calls


def test_options_reach_the_config(run, captured):
    result = run("train", "BASE", "--data", "t.jsonl", "--eval-data", "v.jsonl", "--recipe", "regression", "--out",
                 "R", "--lr-sweep", "--batch-size", "32", "--micro-batch", "4", "--max-length", "512", "--truncate",
                 "left", "--seed", "3", "--remat", "dots", "--dtype", "float32", "--eval-every", "10", "--save-every", "30",
                 "--max-steps", "7", "--buckets", "128,512", "--mesh-data", "1", "--resume", "--format", "json")
    assert result.exit_code == 0, result.output
    c = captured["config"]
    assert (c.recipe, c.epochs, c.global_batch, c.micro_batch, c.accum_steps) == ("regression", 2, 32, 4, 8)
    assert (c.max_length, c.truncate_left, c.seed, c.remat, c.dtype) == (512, True, 3, "dots", "float32")
    assert (c.eval_every, c.save_every, c.max_steps, c.length_buckets) == (10, 30, 7, (128, 512))
    assert captured["lrs"] == list(LR_GRIDS["regression"]) and captured["resume"] is True
    assert json.loads(result.stdout)["best_accuracy"] == 0.95


def test_defaults_are_the_bradley_terry_preset(run, captured):
    result = run("train", "BASE", "--data", "t.jsonl", "--eval-data", "v.jsonl", "--recipe", "bradley_terry",
                 "--out", "R", "--labels-out", "L.csv", "--model-id", "org/m", "--rewardbench", "rb.jsonl")
    assert result.exit_code == 0, result.output
    c = captured["config"]
    assert (c.lr, c.epochs, c.global_batch, c.micro_batch, c.warmup_steps, c.dtype) == (2e-6, 1, 64, 8, 20, "bfloat16")
    assert (c.remat, c.save_every, c.length_buckets) == ("full", 100, (256, 512, 1024, 1536, 2048))
    assert captured["lrs"] is None and (captured["labels_out"], captured["model_id"]) == ("L.csv", "org/m")
    assert "val accuracy   95.00%" in result.stdout and "appended a bradley_terry label" in result.stderr
