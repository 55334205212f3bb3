"""Reward-model training throughput: trainer_jax vs a transformers + PyTorch step, same GPU, same batch.

Run on a GPU machine (not a test; nothing here runs in CI):

    .venv/bin/python benchmarks/bench_train_gpu.py                      # both shapes, both frameworks
    .venv/bin/python benchmarks/bench_train_gpu.py --model qwen2.5-0.5b --pairs 4 --repeat 5
    .venv/bin/python benchmarks/bench_train_gpu.py --model tiny --seq 128 --steps 3   # CPU smoke check

Random weights with the real shapes of Qwen2.5-0.5B-Instruct and Llama-3.2-1B-Instruct (no download). One
training step = forward of chosen + rejected (2 x pairs sequences of --seq tokens, no padding, all tokens
real) through the body and the score head, Bradley-Terry loss, backward, AdamW update; bf16 compute with
fp32 master weights and optimizer state on both sides:

* JAX: ``trainer_jax.train.loop.make_steps`` (the trainer's own jitted step, accumulation of 1);
* PyTorch: ``AutoModelForSequenceClassification`` (sdpa attention), fp32 parameters, ``torch.autocast``
  bf16, fused AdamW.

Reported per framework: median step time over --repeat timed windows of --steps steps (after --warmup
steps), tokens/s, and MFU = achieved FLOP/s / --peak-tflops. FLOPs per token count the body only (no LM
head, no embedding lookup): 6 * N_body + 6 * L * T * (heads * head_dim) (causal attention scores and
values, forward + backward). Output: one JSON line per (model, framework) on stdout, then a Markdown table
row to paste into benchmarks/RESULTS.md with the GPU name and date. Targets (issue 5, one H100): >= 120k
tokens/s at 0.5B and >= 1.3x the PyTorch step.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {  # config.json fields of the real models (random weights)
    "qwen2.5-0.5b": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=151936, hidden_size=896,
                         intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                         max_position_embeddings=32768, hidden_act="silu", use_sliding_window=False),
    "llama-3.2-1b": dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=2048,
                         intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=64, rms_norm_eps=1e-5, tie_word_embeddings=True, max_position_embeddings=131072,
                         hidden_act="silu", rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=32.0,
                         low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "tiny": dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=512, hidden_size=64,
                 intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 rms_norm_eps=1e-6, tie_word_embeddings=False, max_position_embeddings=4096, hidden_act="silu"),
}


def flops_per_token(cfg, seq: int) -> tuple[float, int]:
    """(training FLOPs per token, N_body): 6 * N_body + causal attention, no LM head / embedding."""
    d, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_layers
    q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * f  # q, k, v, o projections + gated MLP (weights only)
    n_body = layers * per_layer
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


def bench_jax(shape: dict, pairs: int, seq: int, args) -> float:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from trainer_jax.models.config import config_from_dict
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import make_optimizer, make_steps
    from trainer_jax.train.recipes import make_config

    cfg = config_from_dict(shape)
    config = make_config("bradley_terry", lr=1e-6, global_batch=pairs, micro_batch=pairs, dtype=args.dtype,
                         remat=args.remat, warmup_steps=0)
    mesh = M.make_mesh()
    model = RewardModel(cfg, num_labels=1, dtype=jnp.dtype(args.dtype), param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.device_put(params, M.tree_shardings(mesh, params))  # as load_reward_model places them
    tx = make_optimizer(config, 1e-6, total_steps=10**9, last_k=1)
    shardings = M.tree_shardings(mesh, (params, jax.eval_shape(tx.init, params)))
    opt_state = jax.jit(tx.init, out_shardings=shardings[1])(params)
    train_step, _ = make_steps(graphdef, rest, config, tx, shardings)
    rng = np.random.default_rng(0)
    ids = M.shard_batch(mesh, rng.integers(3, cfg.vocab_size, (2 * pairs, seq), dtype=np.int32))  # (2B, T)
    mask = M.shard_batch(mesh, np.ones((2 * pairs, seq), np.int32))  # (2B, T) no padding
    valid = M.shard_batch(mesh, np.ones(pairs, bool))
    targets = M.shard_batch(mesh, np.zeros((pairs, 0), np.float32))
    state = {"p": params, "o": opt_state, "m": None}

    def step():
        state["p"], state["o"], state["m"] = train_step(state["p"], state["o"], ids, mask, valid, targets)

    return timed(step, args.warmup, args.steps, args.repeat, lambda: jax.block_until_ready(state["m"]))


def bench_torch(shape: dict, pairs: int, seq: int, args) -> float:
    import torch
    import transformers

    cls = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}[shape["model_type"]]
    fields = {k: v for k, v in shape.items() if k not in ("model_type", "architectures")}
    config = cls(**fields, num_labels=1, pad_token_id=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model = model.to(device=device, dtype=torch.float32).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device == "cuda")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, config.vocab_size, (2 * pairs, seq), generator=gen).to(device)  # (2B, T)
    mask = torch.ones_like(ids)
    if args.remat:
        model.gradient_checkpointing_enable()

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()  # (2B,)
        loss = -torch.nn.functional.logsigmoid(rewards[:pairs] - rewards[pairs:]).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return timed(step, args.warmup, args.steps, args.repeat, sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=sorted(SHAPES), help="repeatable; default: both real shapes")
    parser.add_argument("--framework", action="append", choices=["jax", "torch"], help="repeatable; default: both")
    parser.add_argument("--pairs", type=int, default=4, help="preference pairs per step (2x sequences)")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--remat", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    args = parser.parse_args()

    from trainer_jax.models.config import config_from_dict

    gpu = "cpu"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    results = {}
    for name in args.model or ["qwen2.5-0.5b", "llama-3.2-1b"]:
        per_token, n_body = flops_per_token(config_from_dict(SHAPES[name]), args.seq)
        for framework in args.framework or ["jax", "torch"]:
            seconds = (bench_jax if framework == "jax" else bench_torch)(SHAPES[name], args.pairs, args.seq, args)
            tokens = 2 * args.pairs * args.seq / seconds
            record = {"model": name, "framework": framework, "gpu": gpu, "pairs": args.pairs, "seq": args.seq,
                      "dtype": args.dtype, "remat": args.remat, "step_s": seconds, "tokens_per_s": tokens,
                      "mfu": tokens * per_token / (args.peak_tflops * 1e12), "n_body": n_body}
            results[(name, framework)] = record
            print(json.dumps(record), flush=True)
    date = datetime.date.today().isoformat()
    for name in args.model or ["qwen2.5-0.5b", "llama-3.2-1b"]:
        j, t = results.get((name, "jax")), results.get((name, "torch"))
        cell = lambda r: "—" if r is None else f"{r['tokens_per_s']:,.0f} tok/s, MFU {100 * r['mfu']:.1f}%"  # noqa: E731
        speedup = f"{t['step_s'] / j['step_s']:.2f}x" if j and t else "—"
        print(f"| {date} | {gpu} | {name} | {args.pairs}x2x{args.seq} {args.dtype} | {cell(j)} | {cell(t)} | {speedup} |")


if __name__ == "__main__":
    main()
