"""Fused (cuDNN flash) against XLA attention: the same numbers, time and memory, as the decoder calls them.

Random bf16 q, k, v of a real model's attention shape with per-row lengths (right padding), causal,
through ``trainer_jax.models.attention.attend`` with each implementation: the forward output and the
gradients of a scalar function of it are compared on real rows; forward + backward is timed (median of
--repeat windows of --steps calls after a warm-up); the compiled program's temporary memory is read
from XLA's memory analysis. Also times one 8192^3 bf16 matrix product (the device's real bf16 peak,
which gpu_check uses for MFU). One JSON line per measurement. On a CPU only XLA runs.

    python benchmarks/attention_check.py --model qwen2.5-0.5b-instruct --rows 16 --seq 2048
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_gpu import hf_config  # noqa: E402


def _median_seconds(fn, args, steps: int, repeat: int) -> float:
    import jax

    jax.block_until_ready(fn(*args))
    windows = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn(*args)
        jax.block_until_ready(out)
        windows.append((time.perf_counter() - start) / steps)
    return statistics.median(windows)


def matmul_peak(size: int, steps: int, repeat: int) -> dict:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.bfloat16)
    seconds = _median_seconds(jax.jit(jnp.matmul), (a, b), steps, repeat)
    return {"bench": "matmul_bf16", "size": size, "tflops": 2 * size**3 / seconds / 1e12,
            "device": jax.devices()[0].device_kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--matmul", type=int, default=8192, help="side of the peak-rate matrix product (0: skip)")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np

    from trainer_jax.models.attention import attend, choose_attention
    from trainer_jax.models.config import config_from_dict

    cfg = config_from_dict(hf_config(args.model))
    if args.matmul:
        print(json.dumps(matmul_peak(args.matmul, args.steps, args.repeat)), flush=True)
    keys = jax.random.split(jax.random.key(0), 3)
    b, t = args.rows, args.seq
    q = jax.random.normal(keys[0], (b, t, cfg.num_heads, cfg.head_dim), jnp.bfloat16)
    k = jax.random.normal(keys[1], (b, t, cfg.num_kv_heads, cfg.head_dim), jnp.bfloat16)
    v = jax.random.normal(keys[2], (b, t, cfg.num_kv_heads, cfg.head_dim), jnp.bfloat16)
    lengths = jnp.asarray(np.random.default_rng(0).integers(t // 4, t + 1, size=b), jnp.int32)  # (B,)
    real = (jnp.arange(t)[None, :] < lengths[:, None])[..., None, None]  # (B, T, 1, 1)

    def forward_backward(implementation):
        def loss(q, k, v):
            out = attend(q, k, v, lengths, cfg=cfg, window=None, implementation=implementation)
            return jnp.sum(jnp.where(real, out, 0).astype(jnp.float32) ** 2), out

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))

    chosen = choose_attention(cfg, jnp.bfloat16).implementation
    implementations = ["xla"] + (["cudnn"] if chosen == "cudnn" else [])
    results = {}
    for implementation in implementations:
        fn = forward_backward(implementation)
        memory = fn.lower(q, k, v).compile().memory_analysis()
        (_, out), grads = fn(q, k, v)
        results[implementation] = (out, grads)
        seconds = _median_seconds(fn, (q, k, v), args.steps, args.repeat)
        print(json.dumps({"bench": "attention", "implementation": implementation, "model": args.model, "rows": b,
                          "seq": t, "fwd_bwd_ms": 1e3 * seconds,
                          "temp_bytes": getattr(memory, "temp_size_in_bytes", None),
                          "device": jax.devices()[0].device_kind}), flush=True)
    if len(results) == 2:
        (out_x, g_x), (out_c, g_c) = results["xla"], results["cudnn"]
        mask = np.asarray(real)
        diff = lambda a, c: float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(c, np.float32)) * mask))  # noqa: E731
        print(json.dumps({"bench": "attention_equality", "max_abs_diff_out": diff(out_x, out_c),
                          "max_abs_diff_grads": [diff(a, c) for a, c in zip(g_x, g_c)],
                          "max_abs_out": float(np.max(np.abs(np.asarray(out_x, np.float32)) * mask))}), flush=True)
    else:
        print(json.dumps({"bench": "attention_equality", "skipped": f"cuDNN attention not available ({chosen} chosen)"}),
              flush=True)


if __name__ == "__main__":
    main()
