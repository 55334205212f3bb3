"""The functional train step: remat changes nothing but memory; bf16 compute keeps fp32 master weights;
an LR sweep compiles the step no more often than one learning rate."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("transformers")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402

from trainer_jax.models.hf_import import load_reward_model  # noqa: E402
from trainer_jax.train import mesh as M  # noqa: E402
from trainer_jax.train.loop import Schedule, build_steps  # noqa: E402

IDS = np.array([[5, 6, 7, 8, 9, 0], [11, 12, 13, 0, 0, 0]], np.int32)  # (B, T)
MASK = (IDS != 0).astype(np.int32)  # (B, T)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return B.workspace(tmp_path_factory) / "base"


def _one_step(base, **overrides):
    """Params, optimizer state and metrics after one train step on a fixed batch."""
    mesh = M.make_mesh()
    config = B.tiny_config(global_batch=8, warmup_steps=0, **overrides)
    model = load_reward_model(base, dtype=jnp.dtype(config.dtype))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    steps = build_steps(graphdef, params, rest, config, Schedule(total_steps=10, last_k=1), mesh, "xla")
    opt_state = steps.init_opt(params, 1e-3)
    step = steps.train_step
    ids = np.concatenate([IDS, IDS[::-1]])  # (2B, T): chosen rows, then rejected rows
    mask = np.concatenate([MASK, MASK[::-1]])
    before = jax.tree.map(np.array, params)  # copies: params are donated
    params, opt_state, metrics = step(params, opt_state, ids, mask, np.ones(2, bool), np.zeros(2, np.float32))
    return before, params, opt_state, metrics


@pytest.mark.parametrize("policy", ["full", "dots"])
def test_remat_step_matches_plain_step(base, policy):
    _, plain, _, m0 = _one_step(base, remat="none")
    _, remat, _, m1 = _one_step(base, remat=policy)
    assert float(m1["loss"]) == pytest.approx(float(m0["loss"]), rel=1e-6)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)  # fusion-level fp32 noise


def test_bf16_compute_keeps_fp32_master_weights_and_optimizer_state(base):
    losses = {}
    for dtype in ("float32", "bfloat16"):
        before, params, opt_state, metrics = _one_step(base, dtype=dtype)
        floats = [x for x in jax.tree.leaves((params, opt_state)) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in floats)
        changed = [not np.array_equal(a, np.asarray(b)) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(params))]
        assert all(changed)  # an update at 1e-3 reaches every fp32 master weight
        losses[dtype] = float(metrics["loss"])
    assert np.isfinite(losses["bfloat16"]) and abs(losses["bfloat16"] - losses["float32"]) < 0.05


def test_a_three_lr_sweep_compiles_the_train_step_as_often_as_one_lr(tmp_path_factory, tmp_path):
    from trainer_jax.train.run import train

    ws = B.workspace(tmp_path_factory)
    args = (ws / "base", ws / "train.jsonl", ws / "val.jsonl")
    config = B.tiny_config(max_steps=2, eval_every=2, buckets=(32, 64))  # two shapes: short and long batches
    one = train(*args, tmp_path / "one", config)
    sweep = train(*args, tmp_path / "sweep", config, lrs=[1e-3, 5e-4, 2e-4])
    assert one.runtime["compiled"]["train_step"] >= 1
    assert sweep.runtime["compiled"] == one.runtime["compiled"]  # same shapes, compiled once each
    assert len(sweep.runs) == 3 and len({r["params_sha256"] for r in sweep.runs}) == 3  # the lr did change


def test_a_first_sigint_or_sigterm_asks_to_stop_a_second_ctrl_c_stops_at_once():
    import os
    import signal

    from trainer_jax.train.loop import StopRequest

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN under `cmd &`
    with StopRequest() as stop:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.signal == signal.SIGTERM
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # first Ctrl-C: finish the step, save, stop
        assert stop.requested() and stop.signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # second: now
    assert {sig: signal.getsignal(sig) for sig in before} == before  # handlers restored
