"""Reward-model training throughput of ONE framework per process: trainer_jax, or transformers + PyTorch.

Run each framework in its own process (JAX reserves 75% of the GPU's memory at start and keeps it, so a
PyTorch step in the same process would starve); ``benchmarks/gpu_check.sh`` does that. Nothing here runs
in CI except the CPU smoke run of gpu_check.sh with ``--model tiny``.

    python benchmarks/bench_train_gpu.py --framework jax --model qwen2.5-0.5b-instruct --pairs 4 --seq 2048
    python benchmarks/bench_train_gpu.py --framework torch --model qwen2.5-0.5b-instruct --pairs 4 --seq 2048
    python benchmarks/bench_train_gpu.py --framework jax --model tiny --seq 128 --steps 2   # CPU smoke check

Random weights with the real shapes (config.json files under tests/trainer/fixtures/configs; no
download). One training step = forward of chosen + rejected (2 x pairs rows of --seq real tokens, no
padding) through the body and the score head, Bradley-Terry loss, backward, AdamW update; bf16 compute
with fp32 master weights and optimizer state on both sides:

* JAX: the trainer's own jitted step (``trainer_jax.train.loop.build_steps``) with its attention choice
  (cuDNN flash on a GPU) and the --remat policy;
* PyTorch: ``AutoModelForSequenceClassification`` (sdpa attention), fp32 parameters, ``torch.autocast``
  bf16, fused AdamW, gradient checkpointing when --remat is not none.

Prints one JSON line: median step time over --repeat timed windows of --steps steps (after --warmup),
tokens/s, MFU = model FLOP/s / --peak-tflops (FLOPs per token: 6 * N_body + 6 * L * T * heads * head_dim,
causal attention forward + backward, no LM head, no embedding, no recomputation counted), the peak
device memory, and for JAX the dry run's estimate for the same run.
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
TINY = dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=512, hidden_size=64,
            intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            rms_norm_eps=1e-6, tie_word_embeddings=False, max_position_embeddings=4096, hidden_act="silu")


def hf_config(name: str) -> dict:
    return TINY if name == "tiny" else json.loads((CONFIGS / f"{name}.json").read_text())


def flops_per_token(cfg, seq: int) -> tuple[float, int]:
    """(training FLOPs per token, N_body): 6 * N_body + causal attention, no LM head / embedding."""
    d, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_layers
    q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    n_body = layers * (d * q + 2 * d * kv + q * d + 3 * d * f)  # q, k, v, o projections + gated MLP
    attention = 6 * layers * seq * q  # 2 matmuls x 2 FLOPs x 3 (fwd + bwd) x 1/2 (causal)
    return 6.0 * n_body + attention, n_body


def timed(step, warmup: int, steps: int, repeat: int, sync) -> float:
    """Median seconds per step over ``repeat`` windows of ``steps`` steps."""
    for _ in range(warmup):
        step()
    sync()
    windows = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        windows.append((time.perf_counter() - start) / steps)
    return statistics.median(windows)


def bench_jax(name: str, args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train import dryrun
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps
    from trainer_jax.train.recipes import make_config

    cfg = config_from_dict(hf_config(name))
    config = make_config("bradley_terry", lr=1e-6, global_batch=args.pairs, micro_batch=args.pairs, dtype=args.dtype,
                         remat=args.remat, warmup_steps=0, max_length=args.seq, buckets=(args.seq,))
    mesh = M.make_mesh()
    attention = args.attention or choose_attention(cfg, jnp.dtype(args.dtype)).implementation
    model = RewardModel(cfg, num_labels=1, dtype=jnp.dtype(args.dtype), param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.device_put(params, M.tree_shardings(mesh, params))  # as load_reward_model places them
    steps = build_steps(graphdef, params, rest, config, Schedule(10**9, 1), mesh, attention)
    opt_state = steps.init_opt(params, 1e-6)
    rng = np.random.default_rng(0)
    ids = M.shard_batch(mesh, rng.integers(3, cfg.vocab_size, (2 * args.pairs, args.seq), dtype=np.int32))  # (2B, T)
    mask = M.shard_batch(mesh, np.ones((2 * args.pairs, args.seq), np.int32))  # (2B, T) no padding
    valid = M.shard_batch(mesh, np.ones(args.pairs, bool))
    margins = M.shard_batch(mesh, np.zeros(args.pairs, np.float32))
    state = {"p": params, "o": opt_state, "m": None}
    del model, params, opt_state

    def step():
        state["p"], state["o"], state["m"] = steps.train_step(state["p"], state["o"], ids, mask, valid, margins)

    seconds = timed(step, args.warmup, args.steps, args.repeat, lambda: jax.block_until_ready(state["m"]))
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    estimate = dryrun.estimate_config(cfg, "benchmark", config, capacity=int(stats.get("bytes_limit", 80e9)),
                                      devices=1, platform=jax.default_backend())
    return {"device": device.device_kind, "attention": attention, "compiled": dict(steps.compiled),
            "peak_bytes": stats.get("peak_bytes_in_use"), "dry_run_bytes": estimate.per_device_bytes,
            "versions": {"jax": jax.__version__, "flax": __import__("flax").__version__}, "step_s": seconds, "cfg": cfg}


def bench_torch(name: str, args) -> dict:
    import torch
    import transformers

    from trainer_jax.models.config import config_from_dict

    shape = hf_config(name)
    cls = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}[shape["model_type"]]
    fields = {k: v for k, v in shape.items() if k not in ("model_type", "architectures")}
    config = cls(**fields, num_labels=1, pad_token_id=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model = model.to(device=device, dtype=torch.float32).train()
    if args.remat != "none":
        model.gradient_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device == "cuda")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, config.vocab_size, (2 * args.pairs, args.seq), generator=gen).to(device)  # (2B, T)
    mask = torch.ones_like(ids)

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()  # (2B,)
        loss = -torch.nn.functional.logsigmoid(rewards[: args.pairs] - rewards[args.pairs :]).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seconds = timed(step, args.warmup, args.steps, args.repeat, sync)
    return {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "attention": "sdpa",
            "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}, "step_s": seconds,
            "cfg": config_from_dict(shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", required=True, choices=["jax", "torch"])
    parser.add_argument("--model", required=True, help="tiny, or a config name under tests/trainer/fixtures/configs")
    parser.add_argument("--pairs", type=int, default=4, help="preference pairs per step (2x sequences)")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--remat", choices=["full", "dots", "none"], default="none")
    parser.add_argument("--attention", choices=["cudnn", "xla"], help="JAX: force a kernel (default: the trainer's choice)")
    parser.add_argument("--peak-tflops", type=float, help="the device's bf16 peak for MFU (e.g. measured by gpu_check)")
    args = parser.parse_args()

    result = (bench_jax if args.framework == "jax" else bench_torch)(args.model, args)
    per_token, n_body = flops_per_token(result.pop("cfg"), args.seq)
    tokens = 2 * args.pairs * args.seq / result["step_s"]
    record = {"bench": "train_step", "model": args.model, "framework": args.framework, "pairs": args.pairs,
              "seq": args.seq, "dtype": args.dtype, "remat": args.remat, **result, "tokens_per_s": tokens,
              "n_body": n_body, "model_tflops": tokens * per_token / 1e12,
              "mfu": tokens * per_token / (args.peak_tflops * 1e12) if args.peak_tflops else None}
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
