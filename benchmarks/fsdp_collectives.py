"""Collective traffic of the compiled FSDP train step, per layer and per device, read from the HLO.

Compiles (never runs) the trainer's own train step for a random-weight model of a real shape on
simulated CPU devices and sums the output bytes of every collective in the program right after XLA's
SPMD partitioner (dumped with --xla_dump_to), by kind. That is the partitioned program every backend
starts from: XLA:CPU's later passes upcast bf16 collectives to f32 and keep all-reduce where GPUs get a
reduce-scatter, so the final CPU program would misstate what a GPU moves. Collectives inside a while
loop (the layer scan, forward and backward) run once per layer: their sum is the per-layer figure.
Nothing is allocated, so any shape fits a 2-core machine.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \\
        .venv/bin/python benchmarks/fsdp_collectives.py --model qwen2.5-0.5b-instruct --pairs 8 --seq 2048

Prints one JSON line: {"model", "devices", "rows", "seq", "per_layer": {kind: bytes}, "outside_layers":
{kind: bytes}, "compile_s"}.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CONFIGS = REPO / "tests" / "trainer" / "fixtures" / "configs"
KINDS = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
                "f64": 8, "s64": 8, "u64": 8}
_SHAPE = re.compile(r"(pred|[a-z]+\d+)\[([\d,]*)\]")


def _shape_bytes(text: str) -> int:
    """Bytes of every array shape in an HLO result type (tuples summed)."""
    total = 0
    for dtype, dims in _SHAPE.findall(text):
        n = 1
        for d in filter(None, dims.split(",")):
            n *= int(d)
        total += n * _DTYPE_BYTES.get(dtype, 4)
    return total


def collective_bytes(hlo: str) -> tuple[dict, dict]:
    """(per while-body iteration, elsewhere) collective output bytes by kind, from HLO text."""
    bodies = set(re.findall(r"body=%?([\w.\-]+)", hlo))
    inside, outside = defaultdict(int), defaultdict(int)
    computation = None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) ", line)
        if header and line.rstrip().endswith("{"):
            computation = header.group(1)
            continue
        for kind in KINDS:
            match = re.search(rf"= (.+?) {kind}(?:-start)?\(", line)
            if match:
                (inside if computation in bodies else outside)[kind] += _shape_bytes(match.group(1))
    return dict(inside), dict(outside)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct", help="a config under tests/trainer/fixtures/configs")
    parser.add_argument("--pairs", type=int, default=8, help="micro batch, pairs (2 rows each)")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--remat", default="full", choices=("full", "dots", "none"))
    args = parser.parse_args()
    dump = tempfile.mkdtemp(prefix="basepick-hlo-")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump}"
                               " --xla_dump_hlo_pass_re=spmd-partitioning")  # read when JAX starts its backend

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps
    from trainer_jax.train.recipes import make_config

    cfg = config_from_dict(json.loads((CONFIGS / f"{args.model}.json").read_text()))
    config = make_config("bradley_terry", micro_batch=args.pairs, global_batch=args.pairs, max_length=args.seq,
                         buckets=(args.seq,), remat=args.remat)
    mesh = M.make_mesh()
    abstract = nnx.eval_shape(lambda: RewardModel(cfg, dtype=jnp.bfloat16, param_dtype=jnp.float32, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), params,
                          M.tree_shardings(mesh, params))
    steps = build_steps(graphdef, params, rest, config, Schedule(10, 1), mesh, "xla")
    opt = jax.eval_shape(lambda p: steps.init_opt(p, 1e-6), params)
    rows = 2 * args.pairs
    batch = jax.ShapeDtypeStruct((rows, args.seq), jnp.int32, sharding=M.batch_sharding(mesh))
    flags = jax.ShapeDtypeStruct((args.pairs,), bool, sharding=M.batch_sharding(mesh))
    margins = jax.ShapeDtypeStruct((args.pairs,), jnp.float32, sharding=M.batch_sharding(mesh))
    started = time.perf_counter()
    steps.train_step.lower(params, opt, batch, batch, flags, margins).compile()
    seconds = time.perf_counter() - started
    (path,) = glob.glob(f"{dump}/*jit_train_step*after_spmd-partitioning*")
    per_layer, outside = collective_bytes(Path(path).read_text())
    print(json.dumps({"model": args.model, "devices": jax.device_count(), "rows": rows, "seq": args.seq,
                      "remat": args.remat, "layers": cfg.num_layers, "per_layer": per_layer,
                      "outside_layers": outside, "compile_s": round(seconds, 1)}))


if __name__ == "__main__":
    main()
