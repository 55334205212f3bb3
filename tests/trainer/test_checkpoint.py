"""Orbax checkpoints: exact round trip, lean on disk, unreadable ones refused, interrupted saves ignored,
a stopped run resumes exactly."""

import json
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from trainer_jax.train.checkpoint import RunCheckpoints  # noqa: E402


def _state(width: int = 4):
    model = nnx.Linear(width, 3, rngs=nnx.Rngs(0))
    _, params = nnx.split(model, nnx.Param)
    tx = optax.MultiSteps(optax.adamw(1e-3), every_k_schedule=2)
    opt_state = tx.init(params)
    keys = iter(jax.random.split(jax.random.key(1), 8))
    for _ in range(2):  # one whole optimizer step: moments and counters set, the accumulator back to zero
        grads = jax.tree.map(lambda p: jax.random.normal(next(keys), p.shape), params)  # incompressible
        _, opt_state = tx.update(grads, opt_state, params)
    return params, opt_state, jax.random.key(7)


def test_round_trip_is_exact(tmp_path):
    params, opt_state, rng = _state()
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save_state(3, params, opt_state, rng, {"position": [0, 5], "best": {"accuracy": 0.5}})
    ckpt.save_best(3, params)
    restored = ckpt.restore_state(ckpt.latest_state_step(), {"params": params, "opt_state": opt_state, "rng": rng})
    assert restored.step == 3 and restored.meta["position"] == [0, 5] and restored.meta["step"] == 3
    for a, b in zip(jax.tree.leaves((params, opt_state)), jax.tree.leaves((restored.tree["params"], restored.tree["opt_state"]))):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert jax.random.key_data(restored.tree["rng"]).tolist() == jax.random.key_data(rng).tolist()
    best = ckpt.restore_best(params)
    np.testing.assert_array_equal(np.asarray(best["kernel"].get_value()), np.asarray(params["kernel"].get_value()))
    ckpt.close()


def test_resume_state_is_at_most_12_bytes_and_best_4_bytes_per_parameter(tmp_path):
    params, opt_state, rng = _state(width=100_000)  # 300k parameters: file overheads are negligible
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save_state(2, params, opt_state, rng, {})
    ckpt.save_best(2, params)
    ckpt.close()
    n = sum(x.size for x in jax.tree.leaves(params))
    size = lambda d: sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / n  # noqa: E731
    # fp32 params + both Adam moments, no accumulator (which would make it 16); orbax's zstd saves a little
    assert 8.0 < size(tmp_path / "ck" / "state" / "2") <= 12.5
    assert 3.0 < size(tmp_path / "ck" / "best" / "2") <= 4.5  # fp32 params only


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_unreadable_checkpoint_is_reported_not_loaded(tmp_path, damage):
    params, opt_state, rng = _state()
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save_state(1, params, opt_state, rng, {})
    ckpt.wait()
    step_dir = tmp_path / "ck" / "state" / "1"
    victim = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    else:
        victim.unlink()
    with pytest.raises(ArtifactError, match="cannot restore checkpoint .*state/1"):
        ckpt.restore_state(1, {"params": params, "opt_state": opt_state, "rng": rng})
    ckpt.close()


def test_a_save_cut_short_is_never_listed(tmp_path):
    """Orbax commits a step by renaming its temporary directory: a crash mid-save leaves an unlisted one."""
    params, opt_state, rng = _state()
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save_state(1, params, opt_state, rng, {})
    ckpt.close()
    shutil.copytree(tmp_path / "ck" / "state" / "1", tmp_path / "ck" / "state" / "2.orbax-checkpoint-tmp-123")
    assert RunCheckpoints(tmp_path / "ck").latest_state_step() == 1


def test_no_best_checkpoint_is_an_error(tmp_path):
    params, _, _ = _state()
    with pytest.raises(ArtifactError, match="holds no checkpoint"):
        RunCheckpoints(tmp_path / "ck").restore_best(params)


def test_halted_run_resumes_to_the_uninterrupted_result(tmp_path_factory, tmp_path):
    from safetensors.numpy import load_file

    from trainer_jax.train.run import train

    ws = B.workspace(tmp_path_factory)
    args = (ws / "base", ws / "train.jsonl", ws / "val.jsonl")
    full = train(*args, tmp_path / "full", B.tiny_config(max_steps=7))
    halted = train(*args, tmp_path / "cut", B.tiny_config(max_steps=7, halt_after=4))
    assert not halted.finished and halted.run_dir == str(tmp_path / "cut.partial") and not (tmp_path / "cut").exists()
    resumed = train(*args, tmp_path / "cut", B.tiny_config(max_steps=7), resume=True)
    assert resumed.finished and not (tmp_path / "cut.partial").exists()
    assert resumed.runs[0]["params_sha256"] == full.runs[0]["params_sha256"]  # final parameters: bit-identical
    assert resumed.runs[0] == full.runs[0]
    assert resumed.initial_accuracy == halted.initial_accuracy == full.initial_accuracy  # step 0: measured once
    a, b = load_file(str(tmp_path / "full/model/model.safetensors")), load_file(str(tmp_path / "cut/model/model.safetensors"))
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    log = lambda d: [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    strip = lambda rs: [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rs]  # noqa: E731
    assert strip(log(tmp_path / "cut")) == strip(log(tmp_path / "full"))


def test_resume_refuses_a_corrupt_checkpoint(tmp_path_factory, tmp_path, run):
    ws = B.workspace(tmp_path_factory)
    from trainer_jax.train.run import train

    args = (ws / "base", ws / "train.jsonl", ws / "val.jsonl", tmp_path / "r")
    train(*args, B.tiny_config(max_steps=5, halt_after=3))
    step_dir = tmp_path / "r.partial" / "run" / "checkpoints" / "state" / "3"
    victim = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(ArtifactError, match="cannot restore checkpoint"):
        train(*args, B.tiny_config(max_steps=5), resume=True)
    # settings must match the halted run's
    with pytest.raises(Exception, match="differs from this command"):
        train(*args, B.tiny_config(max_steps=5, lr=5e-4), resume=True)


def test_discard_after_and_resaving_a_step(tmp_path):
    params, opt_state, rng = _state()
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save_state(2, params, opt_state, rng, {})
    ckpt.save_best(4, params)  # written just before a kill, after the last state checkpoint
    ckpt.discard_after(2)
    assert ckpt.best_step() is None and ckpt.latest_state_step() == 2
    ckpt.save_state(2, params, opt_state, rng, {"again": True})  # the same step saved twice: replaced
    assert ckpt.restore_state(2, {"params": params, "opt_state": opt_state, "rng": rng}).meta["again"] is True
    ckpt.close()
