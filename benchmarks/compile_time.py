"""Compile time and program size of the train step against depth: the layer scan keeps both flat.

Compiles (never runs) the trainer's train step for abstract random-weight models of one real shape with
its layer count changed (default: Qwen2.5-0.5B at 24 and 48 layers), on whatever backend JAX has, and
prints one JSON line per depth: compile seconds (median of --repeat fresh compilations; JAX's
persistent cache is off) and the size of the optimized HLO text.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/compile_time.py --layers 24 48 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CONFIGS = REPO / "tests" / "trainer" / "fixtures" / "configs"


def compile_once(hf_config: dict, layers: int, pairs: int, seq: int) -> tuple[float, int]:
    """(seconds to lower and compile, optimized HLO characters) for a fresh jit of the train step."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps
    from trainer_jax.train.recipes import make_config

    cfg = config_from_dict({**hf_config, "num_hidden_layers": layers})
    config = make_config("bradley_terry", micro_batch=pairs, global_batch=pairs, max_length=seq, buckets=(seq,))
    mesh = M.make_mesh()
    abstract = nnx.eval_shape(lambda: RewardModel(cfg, dtype=jnp.bfloat16, param_dtype=jnp.float32, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    steps = build_steps(graphdef, params, rest, config, Schedule(10, 1), mesh, "xla")
    opt = jax.eval_shape(lambda p: steps.init_opt(p, 1e-6), params)
    ids = jax.ShapeDtypeStruct((2 * pairs, seq), jnp.int32)
    started = time.perf_counter()
    compiled = steps.train_step.lower(params, opt, ids, ids, jax.ShapeDtypeStruct((pairs,), bool),
                                      jax.ShapeDtypeStruct((pairs,), jnp.float32)).compile()
    return time.perf_counter() - started, len(compiled.as_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct", help="a config under tests/trainer/fixtures/configs")
    parser.add_argument("--layers", type=int, nargs="+", default=[24, 48])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    hf_config = json.loads((CONFIGS / f"{args.model}.json").read_text())
    for layers in args.layers:
        runs = [compile_once(hf_config, layers, args.pairs, args.seq) for _ in range(args.repeat)]
        print(json.dumps({"model": args.model, "layers": layers, "backend": jax.default_backend(),
                          "compile_s_median": round(statistics.median(r[0] for r in runs), 2),
                          "compile_s_all": [round(r[0], 2) for r in runs], "hlo_chars": runs[0][1]}), flush=True)


if __name__ == "__main__":
    main()
