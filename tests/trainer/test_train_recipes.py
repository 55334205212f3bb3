"""Recipe presets, LR grids and the regression merge-vector search; regression training with an LR sweep."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from predictor.errors import DataError
from trainer_jax.train.recipes import LR_GRIDS, best_merge, make_config, merge_grid

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402


def test_presets_follow_the_seed_study():
    bt, reg = make_config("bradley_terry"), make_config("regression")
    assert (bt.epochs, reg.epochs) == (1, 2)
    assert bt.global_batch == 64 and bt.warmup_steps == 20 and bt.eval_every == 20 and bt.accum_steps == 8
    assert (bt.num_labels, reg.num_labels) == (1, 5)
    assert np.allclose(LR_GRIDS["bradley_terry"], [5e-7, 6e-7, 7e-7, 8e-7, 9e-7, 1e-6, 2e-6, 3e-6, 4e-6, 5e-6])
    assert np.allclose(sorted(LR_GRIDS["regression"]), [1e-7, 3e-7, 5e-7, 7e-7, 9e-7, 1e-6, 3e-6, 5e-6, 7e-6, 9e-6])


@pytest.mark.parametrize(("kwargs", "fragment"), [
    (dict(recipe="dpo"), "unknown recipe"),
    (dict(recipe="bradley_terry", global_batch=60, micro_batch=8), "not a multiple"),
    (dict(recipe="bradley_terry", lr=-1.0), "learning rate"),
    (dict(recipe="bradley_terry", dtype="float16"), "dtype"),
])
def test_bad_configs_are_data_errors(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        make_config(**kwargs)


def test_merge_grid_constraints():
    grid = merge_grid()  # (M, 5)
    assert grid.shape == (10626, 5)
    assert np.allclose(np.abs(grid).sum(axis=1), 1.0)
    assert (grid[:, :4] >= 0).all() and (grid[:, 4] <= 0).all()
    assert np.allclose(np.round(grid / 0.05), grid / 0.05)


def test_best_merge_finds_the_separating_vector():
    rng = np.random.default_rng(0)
    chosen, rejected = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    chosen[:, 1] += 3.0  # correctness separates the pairs
    chosen[:, 4] -= 3.0  # so does (negative) verbosity
    weights, acc = best_merge(chosen, rejected)
    assert acc >= 0.99 and weights[1] > 0 and weights[4] < 0
    assert np.isclose(np.abs(weights).sum(), 1.0)


def test_regression_recipe_with_lr_sweep(tmp_path_factory, tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("orbax.checkpoint")
    pytest.importorskip("transformers")
    from trainer_jax.models.hf_import import read_model_dir
    from trainer_jax.train.run import train

    ws = B.workspace(tmp_path_factory)
    config = B.tiny_config("regression", epochs=2, max_steps=4)
    result = train(ws / "base", ws / "hs2.jsonl", ws / "val.jsonl", tmp_path / "reg", config, lrs=[1e-3, 1e-9])
    assert result.finished and [r["lr"] for r in result.runs] == [1e-3, 1e-9]
    assert result.lr == 1e-3 and result.best_accuracy == max(r["best_accuracy"] for r in result.runs)
    assert list(result.merge_weights) == ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
    weights = np.array(list(result.merge_weights.values()))
    assert weights.shape == (5,) and (weights[:4] >= 0).all() and weights[4] <= 0
    assert np.isclose(np.abs(weights).sum(), 1.0)
    assert {p.name for p in (tmp_path / "reg").iterdir()} >= {"lr-1.0e-03", "lr-1.0e-09", "model", "metrics.jsonl"}
    exported = read_model_dir(tmp_path / "reg" / "model")  # the merge weights folded into one reward
    assert exported.num_labels == 1 and exported.hf_config["basepick_merge_weights"] == result.merge_weights
    records = [json.loads(line) for line in (tmp_path / "reg" / "metrics.jsonl").read_text().splitlines()]
    assert {r["lr"] for r in records} == {None, 1e-3, 1e-9}  # None: step 0, the untrained model
    assert all("merge_weights" in r for r in records if "eval_accuracy" in r)
