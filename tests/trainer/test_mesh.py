"""Mesh and shardings; 8 fake CPU devices (subprocess) give the loss trajectory of one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("transformers")

import jax  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402

from trainer_jax.train import mesh as M  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_param_spec_shards_the_largest_divisible_axis():
    assert M.param_spec((300, 32), 8) == P(None, "fsdp")  # 300 is not divisible by 8, 32 is
    assert M.param_spec((64, 96), 8) == P(None, "fsdp")
    assert M.param_spec((96, 64), 4) == P("fsdp", None)
    assert M.param_spec((3,), 8) == P()
    assert M.param_spec((), 8) == P()
    assert M.param_spec((300, 32), 1) == P()
    assert M.param_spec((16, 64, 96), 8, stacked=True) == P(None, None, "fsdp")  # never the layer axis
    assert M.param_spec((16, 6), 8, stacked=True) == P()


def test_stacked_layers_are_recognised_inside_optimizer_states():
    import optax
    from flax import nnx

    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel

    cfg = config_from_dict(dict(model_type="llama", vocab_size=64, hidden_size=16, intermediate_size=32,
                                num_hidden_layers=8, num_attention_heads=2, num_key_value_heads=1))
    params = nnx.state(nnx.eval_shape(lambda: RewardModel(cfg, rngs=nnx.Rngs(0))), nnx.Param)
    opt = jax.eval_shape(optax.adam(1e-3).init, params)
    specs = jax.tree_util.tree_map_with_path(
        lambda kp, x: M.param_spec(x.shape, 8, stacked=M.is_stacked(kp)), (params, opt))
    flat = {jax.tree_util.keystr(kp): s for kp, s in jax.tree_util.tree_leaves_with_path(specs, is_leaf=lambda s: isinstance(s, P))}
    gate = [s for k, s in flat.items() if "gate_proj" in k and "kernel" in k]
    assert len(gate) == 3  # params, Adam's mu and nu
    assert all(s == P(None, None, "fsdp") for s in gate)  # (8 layers, 16, 32): never the layer axis


def test_single_device_mesh_is_the_same_code_path():
    mesh = M.make_mesh()
    assert mesh.axis_names == ("data", "fsdp") and mesh.devices.size == jax.device_count()
    x = M.shard_batch(mesh, __import__("numpy").arange(8 * 3).reshape(8, 3))
    assert x.shape == (8, 3)
    with pytest.raises(ValueError, match="does not cover"):
        M.make_mesh(data=jax.device_count() + 1, fsdp=1)


STEPS = dict(max_steps=4, eval_every=100, save_every=100)  # validation and checkpoint at the end only


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_eight_fake_devices_match_one_device(tmp_path_factory, tmp_path):
    from trainer_jax.train.run import train

    ws = B.workspace(tmp_path_factory)
    assert jax.device_count() == 1
    train(ws / "base", ws / "train.jsonl", ws / "val.jsonl", tmp_path / "one", B.tiny_config(**STEPS))
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(B.__file__).parent)!r})
import jax, builders as B
from pathlib import Path
from trainer_jax.train.run import train
assert jax.device_count() == 8
ws = Path({str(ws)!r})
config = B.tiny_config(mesh_data=2, **{STEPS!r})  # mesh data=2 x fsdp=4: both axes in use
train(ws / "base", ws / "train.jsonl", ws / "val.jsonl", {str(tmp_path / "eight")!r}, config)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, eight = _records(tmp_path / "one"), _records(tmp_path / "eight")
    losses_1 = [r["loss"] for r in one if "loss" in r]
    losses_8 = [r["loss"] for r in eight if "loss" in r]
    assert len(losses_1) == len(losses_8) == 4
    for a, b in zip(losses_1, losses_8):
        assert abs(a - b) <= 1e-5 * abs(a), (losses_1, losses_8)
    assert [r["eval_accuracy"] for r in one if "eval_accuracy" in r] == [
        r["eval_accuracy"] for r in eight if "eval_accuracy" in r]


# Two layer bodies that differ most from Llama's (the trajectory test's above), each compile costing ~15 s
# on 2 cores: Gemma 3 (window branches, two RoPE tables, per-head q/k norms, sandwich norms) and Nemotron
# (LayerNorm1P with bias, plain squared-ReLU MLP, partial RoPE).
COLLECTIVE_FAMILIES = ["gemma3", "nemotron"]


def test_fsdp_train_steps_of_new_families_have_no_all_to_all(tmp_path):
    """On 8 simulated devices (fsdp 8, bf16, remat full) each train step compiles, from abstract weights, with
    no all-to-all anywhere in the program, the layer scan's body included."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(B.__file__).parent)!r})
import jax, jax.numpy as jnp
from flax import nnx
import builders as B
from tests.trainer.fixtures import make_fixtures
from trainer_jax.models.config import config_from_dict
from trainer_jax.models.heads import RewardModel
from trainer_jax.train import mesh as M
from trainer_jax.train.loop import Schedule, build_steps

mesh = M.make_mesh()
config = B.tiny_config(global_batch=8, micro_batch=8, dtype="bfloat16", remat="full")
rows = jax.ShapeDtypeStruct((16, 64), jnp.int32, sharding=M.batch_sharding(mesh))  # 8 pairs of 64 tokens
pairs = [jax.ShapeDtypeStruct((8,), t, sharding=M.batch_sharding(mesh)) for t in (bool, jnp.float32)]
for family in {COLLECTIVE_FAMILIES!r}:
    cfg = config_from_dict(make_fixtures.hf_config(family).to_dict())
    abstract = nnx.eval_shape(lambda: RewardModel(cfg, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), params,
                          M.tree_shardings(mesh, params))
    steps = build_steps(graphdef, params, rest, config, Schedule(10, 1), mesh, "xla")
    opt = jax.eval_shape(lambda p: steps.init_opt(p, 1e-6), params)
    hlo = steps.train_step.lower(params, opt, rows, rows, *pairs).compile().as_text()
    print(family, hlo.count(" while("), hlo.count("all-to-all"), hlo.count(" conditional("))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in proc.stdout.splitlines()}
    assert set(found) == set(COLLECTIVE_FAMILIES)
    for family, (loops, all_to_all, branches) in found.items():
        assert loops >= 2 and all_to_all == 0, (family, found)  # the layer scan, forward and backward
    assert found["gemma3"][2] > 0 and found["nemotron"][2] == 0  # windows branch only where layers differ
