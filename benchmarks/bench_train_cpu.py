"""A real reward-model training step on this CPU: trainer_jax against transformers + PyTorch, side by side.

    python benchmarks/bench_train_cpu.py                      # SmolLM2-135M-Instruct, 1 pair x 512 tokens
    python benchmarks/bench_train_cpu.py --pairs 2 --seq 256 --steps 5

The real SmolLM2-135M-Instruct weights (``python -m tests.real_weights``) in both frameworks, fp32 compute
(bf16 matmuls are slow on CPUs without bf16 units), a fresh score head, one step = forward of chosen +
rejected (2 x --pairs rows of --seq tokens, no padding), Bradley-Terry loss, backward, AdamW update:

* JAX: the trainer's own jitted step (``trainer_jax.train.loop.build_steps``), remat --remat;
* PyTorch: ``AutoModelForSequenceClassification`` (sdpa attention), ``torch.optim.AdamW``, gradient
  checkpointing when --remat is not none.

Each framework runs in its own process (no thread pool of one spins beside the other's), both loaded at
once and driven one step at a time in turn (jax, torch, jax, ...), so machine load hits both alike: the
figure is a CPU sanity ratio between the frameworks, not a GPU figure. The JAX process also reports its
peak resident memory (``VmHWM``) next to the dry run's estimate for the same run
(``trainer_jax.train.dryrun.estimate_config``, platform cpu). One JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def jax_step(model_dir: Path, args):
    """(step function, sync function, train config) of the trainer's own jitted step on the real weights."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from trainer_jax.models.hf_import import load_reward_model
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import Schedule, build_steps
    from trainer_jax.train.recipes import make_config

    config = make_config("bradley_terry", lr=1e-6, global_batch=args.pairs, micro_batch=args.pairs, dtype="float32",
                         remat=args.remat, warmup_steps=0, max_length=args.seq, buckets=(args.seq,))
    mesh = M.make_mesh()
    model = load_reward_model(model_dir, dtype=jnp.float32, param_dtype=jnp.float32, sharding=M.param_sharding(mesh))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    steps = build_steps(graphdef, params, rest, config, Schedule(10**9, 1), mesh, "xla")
    state = {"p": params, "o": steps.init_opt(params, 1e-6), "m": None}
    rng = np.random.default_rng(0)
    ids = M.shard_batch(mesh, rng.integers(3, model.cfg.vocab_size, (2 * args.pairs, args.seq), dtype=np.int32))
    mask = M.shard_batch(mesh, np.ones((2 * args.pairs, args.seq), np.int32))  # (2B, T) no padding
    valid = M.shard_batch(mesh, np.ones(args.pairs, bool))
    margins = M.shard_batch(mesh, np.zeros(args.pairs, np.float32))
    del model, params

    def step():
        state["p"], state["o"], state["m"] = steps.train_step(state["p"], state["o"], ids, mask, valid, margins)

    return step, lambda: jax.block_until_ready(state["m"]), config


def torch_step(model_dir: Path, args):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32,
                                                               attn_implementation="sdpa").train()
    if args.remat != "none":
        model.gradient_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids = torch.randint(3, model.config.vocab_size, (2 * args.pairs, args.seq),
                        generator=torch.Generator().manual_seed(0))  # (2B, T)
    mask = torch.ones_like(ids)

    def step():
        rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0]  # (2B,)
        loss = -torch.nn.functional.logsigmoid(rewards[: args.pairs] - rewards[args.pairs :]).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, lambda: None


def peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM; ru_maxrss would count the parent's before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(framework: str, model_dir: Path, args) -> None:
    """One framework in its own process: load, then one timed step per line read on stdin."""
    if framework == "jax":
        import jax

        from trainer_jax.models.config import config_from_dict, read_config_json, supported_architecture
        from trainer_jax.train import dryrun

        step, sync, config = jax_step(model_dir, args)
        hf = read_config_json(model_dir)
        estimate = dryrun.estimate_config(config_from_dict(hf), supported_architecture(hf, model_dir), config,
                                          capacity=2**40, devices=jax.device_count(), platform="cpu")
        info = {"jax": jax.__version__, "dry_run_bytes": estimate.per_device_bytes}
    else:
        import torch
        import transformers

        step, sync = torch_step(model_dir, args)
        info = {"torch": torch.__version__, "transformers": transformers.__version__,
                "torch_threads": torch.get_num_threads()}
    print(json.dumps({"ready": True, "rss_after_load_bytes": peak_rss()}), flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        step()
        sync()
        print(json.dumps({"step_s": time.perf_counter() - start}), flush=True)
    print(json.dumps({**info, "peak_rss_bytes": peak_rss()}), flush=True)


def side_by_side(args) -> dict:
    """Both frameworks in their own processes, loaded together, their steps alternated one at a time."""
    procs = {name: subprocess.Popen([sys.executable, __file__, "--worker", name, *sys.argv[1:]], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True) for name in ("jax", "torch")}
    loaded = {name: json.loads(p.stdout.readline()) for name, p in procs.items()}

    def one_step(name: str) -> float:
        procs[name].stdin.write("step\n")
        procs[name].stdin.flush()
        return json.loads(procs[name].stdout.readline())["step_s"]

    first = {name: one_step(name) for name in procs}  # compilation / warm-up
    times: dict[str, list[float]] = {name: [] for name in procs}
    for _ in range(args.steps):
        for name in procs:
            times[name].append(one_step(name))
    final = {}
    for name, p in procs.items():
        p.stdin.close()
        final[name] = json.loads(p.stdout.read().splitlines()[-1])
        p.wait()
    tokens = 2 * args.pairs * args.seq
    out = {name: {"step_s_median": statistics.median(t), "step_s": [round(x, 2) for x in t],
                  "tokens_per_s": tokens / statistics.median(t), "first_step_s": round(first[name], 1),
                  "rss_after_load_bytes": loaded[name]["rss_after_load_bytes"], **final[name]}
           for name, t in times.items()}
    out["jax_over_torch"] = out["jax"]["tokens_per_s"] / out["torch"]["tokens_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="a model of tests/real_weights.py")
    parser.add_argument("--pairs", type=int, default=1, help="preference pairs per step (2x sequences)")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per framework (median reported)")
    parser.add_argument("--remat", choices=["full", "dots", "none"], default="none")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's, the cores)")
    parser.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)  # a framework's process
    args = parser.parse_args()

    from tests import real_weights

    model_dir = real_weights.model_dir(args.model)
    if model_dir is None:
        sys.exit(f"{args.model} is not converted: python -m tests.real_weights {args.model}")
    if args.worker:
        worker(args.worker, model_dir, args)
        return
    load = os.getloadavg()[0]
    record = {"bench": "train_step_cpu", "date": date.today().isoformat(), "model": args.model,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "pairs": args.pairs, "seq": args.seq,
              "dtype": "float32", "remat": args.remat, **side_by_side(args),
              "load_before_after": [round(load, 1), round(os.getloadavg()[0], 1)]}
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
