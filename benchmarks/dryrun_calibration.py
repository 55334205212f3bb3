import sys, time, json
sys.path.insert(0, "/work/main")
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from trainer_jax.models.config import config_from_dict
from trainer_jax.models.heads import RewardModel
from trainer_jax.train.recipes import make_config
from trainer_jax.train.loop import Schedule, build_steps
from trainer_jax.train import mesh as M
from trainer_jax.train import dryrun as DR

hf = dict(model_type="llama", vocab_size=8000, hidden_size=512, intermediate_size=1408, num_hidden_layers=int(sys.argv[1]) if len(sys.argv)>1 else 4,
          num_attention_heads=8, num_key_value_heads=2, head_dim=64)
cfg = config_from_dict(hf)
T, pairs = 512, 4
for remat in ("full", "dots", "none"):
    config = make_config("bradley_terry", micro_batch=pairs, global_batch=pairs, max_length=T, buckets=(T,), remat=remat, dtype="bfloat16")
    abstract = nnx.eval_shape(lambda: RewardModel(cfg, num_labels=1, dtype=jnp.bfloat16, param_dtype=jnp.float32, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    mesh = M.make_mesh()
    shard = M.tree_shardings(mesh, params)
    params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), params, shard)
    steps = build_steps(graphdef, params, rest, config, Schedule(10, 1), mesh, "xla")
    opt = jax.eval_shape(lambda p: steps.init_opt(p, 1e-5), params)
    ids = jax.ShapeDtypeStruct((2*pairs, T), jnp.int32)
    t0 = time.time()
    c = steps.train_step.lower(params, opt, ids, ids, jax.ShapeDtypeStruct((pairs,), bool), jax.ShapeDtypeStruct((pairs, 0), jnp.float32)).compile()
    ma = c.memory_analysis()
    static = {"params": nnx.state(abstract, nnx.Param), "optimizer": opt}
    est = DR._total(cfg, config, static, DR._Plan(1, 1, pairs, remat), "xla")
    print(remat, "compile %.1fs" % (time.time()-t0), "xla temp %.1f MB args %.1f MB out %.1f MB alias %.1f" % (ma.temp_size_in_bytes/1e6, ma.argument_size_in_bytes/1e6, ma.output_size_in_bytes/1e6, ma.alias_size_in_bytes/1e6),
          "| est act %.1f MB grads %.1f params %.1f opt %.1f total %.1f" % (est["activations"]/1e6, est["gradients"]/1e6, est["params"]/1e6, est["optimizer"]/1e6, est["total"]/1e6))
