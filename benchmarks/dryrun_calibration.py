"""The dry run's activation model against XLA's own memory analysis of the compiled train step.

Compiles (never runs) the train step of a small random Llama-shaped model on one CPU device for each
remat policy, and prints, per policy, XLA's temporary-buffer size (activations, gradients and working
memory) next to the dry run's activations + gradients. The dry run's layer working-set factor
(``trainer_jax.train.dryrun.WORKING_SET``) was set from these figures; rerun after changing the decoder.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/dryrun_calibration.py --layers 4 8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train import dryrun
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps
    from trainer_jax.train.recipes import make_config

    for layers in args.layers:
        cfg = config_from_dict(dict(model_type="llama", vocab_size=8000, hidden_size=512, intermediate_size=1408,
                                    num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=2, head_dim=64))
        for remat in ("full", "dots", "none"):
            config = make_config("bradley_terry", micro_batch=args.pairs, global_batch=args.pairs,
                                 max_length=args.seq, buckets=(args.seq,), remat=remat)
            abstract = nnx.eval_shape(lambda: RewardModel(cfg, dtype=jnp.bfloat16, param_dtype=jnp.float32,
                                                          rngs=nnx.Rngs(0)))
            graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
            steps = build_steps(graphdef, params, rest, config, Schedule(10, 1), M.make_mesh(), "xla")
            opt = jax.eval_shape(lambda p: steps.init_opt(p, 1e-5), params)
            ids = jax.ShapeDtypeStruct((2 * args.pairs, args.seq), jnp.int32)
            compiled = steps.train_step.lower(params, opt, ids, ids, jax.ShapeDtypeStruct((args.pairs,), bool),
                                              jax.ShapeDtypeStruct((args.pairs,), jnp.float32)).compile()
            xla = compiled.memory_analysis().temp_size_in_bytes
            plan = dryrun._Plan(data=1, fsdp=1, micro_batch=args.pairs, remat=remat)
            ours = dryrun._total(cfg, config, {"params": params, "optimizer": opt}, plan, "xla")
            estimate = ours["activations"] + ours["gradients"]
            print(json.dumps({"layers": layers, "remat": remat, "xla_temp_mb": round(xla / 1e6, 1),
                              "dry_run_mb": round(estimate / 1e6, 1), "ratio": round(estimate / xla, 3)}), flush=True)


if __name__ == "__main__":
    main()
