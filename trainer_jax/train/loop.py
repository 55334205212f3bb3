"""One training run at one learning rate: a jitted functional step, accumulation, evaluation, checkpoints.

The NNX model is split once (``nnx.split``) into a static graph definition and a parameter State; the train
step is a pure function of (params, optimizer state, batch) that merges them inside ``jax.jit``, so the
Python loop only feeds batches. Parameters and Adam moments are float32 (master weights); the decoder
computes in ``TrainConfig.dtype`` (bf16 by default) because the NNX layers cast their float32 kernels at
use; the reward head, losses and metrics are float32.

Gradient accumulation is ``optax.MultiSteps``: ``accum_steps`` micro batches make one optimizer step (the
last step of a run may take fewer, the remainder of the data). Resume restores params, optimizer state,
step, the data-iterator position and the rng from a verified checkpoint and yields bit-identical results.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from trainer_jax.data.batching import (
    BatchConfig,
    DataPosition,
    iterate_batches,
    num_batches,
)
from trainer_jax.data.encode import TokenizedData
from trainer_jax.models.heads import RewardModel
from trainer_jax.train import loss as L
from trainer_jax.train import mesh as M
from trainer_jax.train.checkpoint import RunCheckpoints
from trainer_jax.train.recipes import TrainConfig, best_merge


@dataclass
class RunResult:
    """Outcome of one learning rate's run."""

    lr: float  # learning rate of the run
    best_accuracy: float  # best validation accuracy seen (0-1)
    best_step: int  # optimizer step of that accuracy (its parameters are in checkpoints/best)
    steps: int  # optimizer steps done
    total_steps: int  # optimizer steps the full run takes
    finished: bool  # False when halted (TrainConfig.halt_after) before total_steps
    merge_weights: list[float] | None  # regression: the best merge vector at best_step
    tokens: int  # real (non-pad) training tokens processed
    params_sha256: str = ""  # digest of the final float32 parameters (equal runs give equal digests)
    params: Any = None  # final parameters (nnx.State, on device); not serialised

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "params"}


def make_optimizer(config: TrainConfig, lr: float, total_steps: int, last_k: int) -> optax.GradientTransformation:
    """AdamW after linear warm-up to a constant lr, gradient clipping, accumulation over micro batches."""
    def adamw(peak_lr):
        schedule = (optax.warmup_constant_schedule(0.0, peak_lr, config.warmup_steps) if config.warmup_steps
                    else optax.constant_schedule(peak_lr))  # warm-up: lr * step / warmup_steps, step from 0
        opt = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=config.weight_decay)
        return opt if config.grad_clip is None else optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)

    # the peak lr lives in the optimizer state, not in the compiled program: an LR sweep compiles once
    inner = optax.inject_hyperparams(adamw)(peak_lr=lr)
    accum = config.accum_steps
    every_k = lambda s: jnp.where(s >= total_steps - 1, last_k, accum)  # noqa: E731  last step may be short
    return optax.MultiSteps(inner, every_k_schedule=every_k)


def make_steps(graphdef, rest, config: TrainConfig, tx, state_shardings):
    """The jitted train step (params, opt_state, *batch) -> (params, opt_state, metrics) and eval forward."""
    regression = config.recipe == "regression"

    def loss_fn(params, ids, mask, valid, targets):
        model = nnx.merge(graphdef, params, rest)
        rewards = model(ids, mask, remat=config.remat)  # (2B, 1) pairs or (B, 5) regression
        if regression:
            return L.regression(rewards, targets, valid)
        b = valid.shape[0]
        return L.bradley_terry(rewards[:b], rewards[b:], valid, center_coef=config.center_coef)

    def train_step(params, opt_state, ids, mask, valid, targets):
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, ids, mask, valid, targets)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params, opt_state = jax.lax.with_sharding_constraint((params, opt_state), state_shardings)
        return params, opt_state, metrics

    def forward(params, ids, mask):
        return nnx.merge(graphdef, params, rest)(ids, mask)  # (rows, L) float32

    return jax.jit(train_step, donate_argnums=(0, 1)), jax.jit(forward)


def evaluate(forward, params, data: TokenizedData, bcfg: BatchConfig, mesh, regression: bool):
    """Validation pairwise accuracy (0-1) and, for regression, the best merge vector."""
    chosen, rejected = [], []
    for batch in iterate_batches(data, bcfg, num_epochs=1):
        rewards = np.asarray(forward(params, M.shard_batch(mesh, batch.input_ids),
                                     M.shard_batch(mesh, batch.attention_mask)))  # (2B, L)
        b = batch.valid.shape[0]
        chosen.append(rewards[:b][batch.valid])
        rejected.append(rewards[b:][batch.valid])
    rc, rr = np.concatenate(chosen), np.concatenate(rejected)  # (N, L) each
    if regression:
        weights, acc = best_merge(rc, rr)
        return acc, [float(w) for w in weights]
    return float(np.mean(rc[:, 0] > rr[:, 0])), None


def _rewind_log(path: Path, lr: float, step: int) -> None:
    """Drop this lr's log records written after ``step`` (the resumed run writes them again)."""
    if path.is_file():
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        keep = [json.dumps(r) for r in records if r.get("lr") != lr or r.get("step", 0) <= step]
        path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def run(model: RewardModel, train: TokenizedData, val: TokenizedData, config: TrainConfig, lr: float,
        run_dir: Path, mesh, *, log_path: Path, resume: bool = False,
        log: Callable[[dict], None] | None = None) -> RunResult:
    """Train ``model`` (already loaded with the mesh's shardings) at ``lr``; checkpoints under run_dir.

    Step and validation records go to the JSONL ``log_path`` (and to ``log`` when given).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    regression = config.recipe == "regression"
    common = dict(batch_size=config.micro_batch, pad_multiple=config.pad_multiple, max_length=config.max_length)
    bcfg = BatchConfig(**common, seed=config.seed)  # length-bucketed, shuffled per epoch
    ecfg = BatchConfig(**common, shuffle=False)
    total_micro = num_batches(len(train.sequences), bcfg) * config.epochs
    total_steps = math.ceil(total_micro / config.accum_steps)
    last_k = total_micro - (total_steps - 1) * config.accum_steps
    if config.max_steps is not None and config.max_steps < total_steps:
        total_steps, last_k = config.max_steps, config.accum_steps

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config, lr, total_steps, last_k)
    shardings = M.tree_shardings(mesh, (params, jax.eval_shape(tx.init, params)))
    opt_state = jax.jit(tx.init, out_shardings=shardings[1])(params)
    train_step, forward = make_steps(graphdef, rest, config, tx, shardings)

    ckpt = RunCheckpoints(run_dir / "checkpoints")
    step, position, rng, tokens = 0, DataPosition(), jax.random.key(config.seed), 0
    best = {"accuracy": -1.0, "step": 0, "merge_weights": None}
    latest = ckpt.latest_state_step() if resume else None
    if latest is not None:
        restored = ckpt.restore_state(latest, {"params": params, "opt_state": opt_state, "rng": rng})
        params, opt_state, rng = (restored.tree[k] for k in ("params", "opt_state", "rng"))
        meta = restored.meta
        step, tokens, best = meta["step"], meta["tokens"], meta["best"]
        position = DataPosition(*meta["position"])
        if jax.process_index() == 0:
            _rewind_log(log_path, lr, step)
    if resume:
        ckpt.discard_after(step)  # e.g. a best checkpoint saved just before the kill, past the last state
    del model  # its arrays now live in params (donated to the first step)

    def emit(record: dict) -> None:
        record = {"lr": lr, **record}
        if jax.process_index() == 0:
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if log is not None:
            log(record)

    stream = iterate_batches(train, bcfg, start=position, num_epochs=config.epochs)
    progress = Progress(TextColumn("lr {task.fields[lr]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[stats]}"), console=Console(stderr=True),
                        disable=not sys.stderr.isatty())
    with progress:
        task = progress.add_task("train", total=total_steps, completed=step, lr=f"{lr:g}", stats="")
        while step < total_steps:
            k = config.accum_steps if step < total_steps - 1 else last_k
            started, group_metrics, group_tokens = time.perf_counter(), [], 0
            for _ in range(k):
                batch = next(stream)
                targets = batch.targets if regression else np.zeros((batch.valid.shape[0], 0), np.float32)
                arrays = [M.shard_batch(mesh, a) for a in (batch.input_ids, batch.attention_mask, batch.valid, targets)]
                params, opt_state, metrics = train_step(params, opt_state, *arrays)
                group_metrics.append(metrics)
                group_tokens += int(batch.attention_mask.sum())
                position = batch.position
            step, tokens = step + 1, tokens + group_tokens
            host = jax.device_get(group_metrics)  # one sync per optimizer step
            record = {key: float(np.mean([m[key] for m in host])) for key in host[0] if key != "n"}
            record.update(step=step, tokens=tokens, tokens_per_s=group_tokens / (time.perf_counter() - started))
            emit(record)
            stats = f"loss {record['loss']:.4f}" + (f" acc {record['accuracy']:.3f}" if "accuracy" in record else "")
            progress.update(task, completed=step, stats=f"{stats} {record['tokens_per_s']:,.0f} tok/s")
            if step % config.eval_every == 0 or step == total_steps:
                acc, weights = evaluate(forward, params, val, ecfg, mesh, regression)
                emit({"step": step, "eval_accuracy": acc, **({"merge_weights": weights} if weights else {})})
                if acc > best["accuracy"]:
                    best = {"accuracy": acc, "step": step, "merge_weights": weights}
                    ckpt.save_best(step, params)
            halt = config.halt_after is not None and step == config.halt_after and step < total_steps
            if step % config.checkpoint_every == 0 or step == total_steps or halt:
                meta = {"tokens": tokens, "best": best, "position": [position.epoch, position.index]}
                ckpt.save_state(step, params, opt_state, rng, meta)
            if halt:
                break
    ckpt.close()
    return RunResult(lr=lr, best_accuracy=best["accuracy"], best_step=best["step"], steps=step,
                     total_steps=total_steps, finished=step >= total_steps, merge_weights=best["merge_weights"],
                     tokens=tokens, params_sha256=params_digest(params), params=params)


def params_digest(params) -> str:
    """SHA-256 over every parameter's path, shape and float32 bytes, in path order ("" on multi-host)."""
    import hashlib

    if jax.process_count() > 1:  # shards on other hosts are not readable here
        return ""
    h = hashlib.sha256()
    for path, value in sorted(nnx.to_flat_state(params), key=lambda kv: tuple(map(str, kv[0]))):
        array = np.asarray(jax.device_get(value.get_value() if hasattr(value, "get_value") else value), np.float32)
        h.update(f"{'/'.join(map(str, path))}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def restore_best(model: RewardModel, run_dir: Path) -> RewardModel:
    """``model`` (same architecture and shardings) with the parameters of run_dir's best checkpoint."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    ckpt = RunCheckpoints(run_dir / "checkpoints")
    try:
        best = ckpt.restore_best(params)
    finally:
        ckpt.close()
    return nnx.merge(graphdef, best, rest)
