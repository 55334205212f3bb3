"""Training at one learning rate: jitted functional steps compiled once per run, accumulation, evaluation,
asynchronous checkpoints, a clean stop on SIGTERM/SIGINT.

The NNX model is split once (``nnx.split``) into a static graph definition and a parameter State; the train
step is a pure function of (params, optimizer state, batch) that merges them inside ``jax.jit``, so the
Python loop only feeds batches. ``build_steps`` makes the jitted functions once for a whole learning-rate
sweep: the peak learning rate lives in the optimizer state (``optax.inject_hyperparams``), not in the
program, and batches come in the few padded lengths of ``TrainConfig.length_buckets``, so a sweep compiles
each shape once (``Steps.compiled`` counts). Parameters and Adam moments are float32 (master weights);
matrices are cast to the compute dtype (bf16 by default) inside each layer before use, the reward head,
losses and metrics stay float32.

Gradient accumulation is ``optax.MultiSteps``: ``accum_steps`` micro batches make one optimizer step (the
last step of a run may take fewer, the remainder of the data). Resume restores params, optimizer state,
step, the data-iterator position and the rng from the last committed checkpoint and yields bit-identical
results.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from trainer_jax.data.batching import BatchConfig, DataPosition, iterate_batches, num_batches
from trainer_jax.data.encode import TokenizedData
from trainer_jax.models.decoder import Execution
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
    finished: bool  # False when halted (SIGTERM/SIGINT or TrainConfig.halt_after) before total_steps
    merge_weights: list[float] | None  # regression: the best merge vector at best_step
    tokens: int  # real (non-pad) training tokens processed
    params_sha256: str = ""  # digest of the final float32 parameters (equal runs give equal digests; "" multi-host)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Schedule:
    """How many optimizer steps a run takes and how many micro batches the last one has."""

    total_steps: int  # optimizer steps
    last_k: int  # micro batches in the last optimizer step (accum_steps unless the data runs out)


def batch_configs(config: TrainConfig) -> tuple[BatchConfig, BatchConfig]:
    """(training: shuffled, length-bucketed; validation: input order) batch settings."""
    common = dict(batch_size=config.micro_batch, buckets=config.length_buckets)
    return BatchConfig(**common, seed=config.seed), BatchConfig(**common, shuffle=False)


def schedule(n_train: int, config: TrainConfig) -> Schedule:
    total_micro = num_batches(n_train, batch_configs(config)[0]) * config.epochs
    total_steps = math.ceil(total_micro / config.accum_steps)
    last_k = total_micro - (total_steps - 1) * config.accum_steps
    if config.max_steps is not None and config.max_steps < total_steps:
        return Schedule(config.max_steps, config.accum_steps)
    return Schedule(total_steps, last_k)


def make_optimizer(config: TrainConfig, lr: float, sched: Schedule) -> optax.GradientTransformation:
    """AdamW after linear warm-up to a constant lr, gradient clipping, accumulation over micro batches."""
    def adamw(peak_lr):
        lr_schedule = (optax.warmup_constant_schedule(0.0, peak_lr, config.warmup_steps) if config.warmup_steps
                       else optax.constant_schedule(peak_lr))  # warm-up: lr * step / warmup_steps, step from 0
        opt = optax.adamw(lr_schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=config.weight_decay)
        return opt if config.grad_clip is None else optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)

    # the peak lr lives in the optimizer state, not in the compiled program: an LR sweep compiles once
    inner = optax.inject_hyperparams(adamw)(peak_lr=lr)
    every_k = lambda s: jnp.where(s >= sched.total_steps - 1, sched.last_k, config.accum_steps)  # noqa: E731
    return optax.MultiSteps(inner, every_k_schedule=every_k)


@dataclass
class Steps:
    """The jitted functions of a run (or a whole LR sweep), made once by ``build_steps``."""

    train_step: Callable  # (params, opt_state, ids, mask, valid, labels) -> (params, opt_state, metrics)
    forward: Callable  # (params, ids, mask) -> rewards (rows, L) float32, replicated on every process
    init_opt: Callable  # (params, lr) -> optimizer state with the mesh's shardings
    shardings: Any  # (params, optimizer state) NamedShardings
    execution: Execution  # remat policy, attention kernel and activation sharding of the forward pass
    compiled: Counter = field(default_factory=Counter)  # traces (= compilations) per function


def build_steps(graphdef, params, rest, config: TrainConfig, sched: Schedule, mesh, attention: str) -> Steps:
    """Jitted train step, eval forward and optimizer init for this model, config and mesh (any lr)."""
    regression = config.recipe == "regression"
    run = Execution(remat=config.remat, attention=attention, mesh=mesh, batch_axes=M.BATCH_AXES)
    tx = make_optimizer(config, config.lr, sched)
    shardings = M.tree_shardings(mesh, (params, jax.eval_shape(tx.init, params)))
    compiled: Counter = Counter()

    def loss_fn(params, ids, mask, valid, labels):
        """labels: (B, 5) regression targets, or (B,) Bradley-Terry margins of the pairs."""
        model = nnx.merge(graphdef, params, rest)
        rewards = model(ids, mask, run)  # (2B, 1) pairs or (B, 5) regression
        if regression:
            return L.regression(rewards, labels, valid)
        b = valid.shape[0]
        return L.bradley_terry(rewards[:b], rewards[b:], valid, margin=labels, center_coef=config.center_coef)

    def train_step(params, opt_state, ids, mask, valid, labels):
        compiled["train_step"] += 1  # runs while tracing only
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, ids, mask, valid, labels)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params, opt_state = jax.lax.with_sharding_constraint((params, opt_state), shardings)
        return params, opt_state, metrics

    def forward(params, ids, mask):
        compiled["forward"] += 1
        return nnx.merge(graphdef, params, rest)(ids, mask, run)  # (rows, L) float32

    def init_opt(params, lr):
        state = tx.init(params)
        hyper = dict(state.inner_opt_state.hyperparams, peak_lr=jnp.asarray(lr, jnp.float32))
        return state._replace(inner_opt_state=state.inner_opt_state._replace(hyperparams=hyper))

    return Steps(
        train_step=jax.jit(train_step, donate_argnums=(0, 1)),
        forward=jax.jit(forward, out_shardings=M.replicated(mesh)),  # every process can read the rewards
        init_opt=jax.jit(init_opt, out_shardings=shardings[1]),
        shardings=shardings, execution=run, compiled=compiled,
    )


def evaluate(steps: Steps, params, data: TokenizedData, bcfg: BatchConfig, mesh, regression: bool):
    """Validation pairwise accuracy (0-1) and, for regression, the best merge vector."""
    chosen, rejected = [], []
    for batch in iterate_batches(data, bcfg, num_epochs=1):
        rewards = np.asarray(steps.forward(params, M.shard_batch(mesh, batch.input_ids),
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


class StopRequest:
    """Set by SIGTERM/SIGINT while installed; the loop saves a resume state and stops at the step's end.

    On several processes the flag is agreed on after every optimizer step, so all stop at the same step.
    """

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def requested(self) -> bool:
        stop = self.signal is not None
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            stop = bool(np.any(multihost_utils.process_allgather(np.array([stop]))))
        return stop


def run(steps: Steps, params, train: TokenizedData, val: TokenizedData, config: TrainConfig, lr: float,
        run_dir: Path, mesh, *, log_path: Path, resume: bool = False, stop: StopRequest | None = None,
        log: Callable[[dict], None] | None = None) -> RunResult:
    """Train ``params`` (already placed with the mesh's shardings) at ``lr``; checkpoints under run_dir.

    Step and validation records go to the JSONL ``log_path`` (and to ``log`` when given).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    regression = config.recipe == "regression"
    bcfg, ecfg = batch_configs(config)
    sched = schedule(len(train.sequences), config)
    opt_state = steps.init_opt(params, lr)

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
                        disable=not sys.stderr.isatty() or jax.process_index() != 0)
    halted = False
    with progress:
        task = progress.add_task("train", total=sched.total_steps, completed=step, lr=f"{lr:g}", stats="")
        while step < sched.total_steps:
            k = config.accum_steps if step < sched.total_steps - 1 else sched.last_k
            started, group_metrics, group_tokens = time.perf_counter(), [], 0
            for _ in range(k):
                batch = next(stream)
                labels = batch.targets if regression else batch.margins  # (B, 5) or (B,)
                arrays = [M.shard_batch(mesh, a) for a in (batch.input_ids, batch.attention_mask, batch.valid, labels)]
                params, opt_state, metrics = steps.train_step(params, opt_state, *arrays)
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
            if step % config.eval_every == 0 or step == sched.total_steps:
                acc, weights = evaluate(steps, params, val, ecfg, mesh, regression)
                emit({"step": step, "eval_accuracy": acc, **({"merge_weights": weights} if weights else {})})
                if acc >= best["accuracy"]:  # a tie goes to the later step: past warm-up, more data seen
                    best = {"accuracy": acc, "step": step, "merge_weights": weights}
                    ckpt.save_best(step, params)
            drill = config.halt_after is not None and step == config.halt_after
            halted = step < sched.total_steps and (drill or (stop is not None and stop.requested()))
            # no resume state at the natural end: the run's result.json marks it done (at 12 bytes per
            # parameter, a state the run directory deletes on finishing would cost an 8B model 96 GB of writes)
            if (step % config.save_every == 0 and step < sched.total_steps) or halted:
                meta = {"tokens": tokens, "best": best, "position": [position.epoch, position.index]}
                ckpt.save_state(step, params, opt_state, rng, meta)
            if halted:
                break
    ckpt.close()  # waits for the asynchronous saves to commit
    return RunResult(lr=lr, best_accuracy=best["accuracy"], best_step=best["step"], steps=step,
                     total_steps=sched.total_steps, finished=not halted, merge_weights=best["merge_weights"],
                     tokens=tokens, params_sha256=params_digest(params))


def params_digest(params) -> str:
    """SHA-256 over every parameter's path, shape and float32 bytes, in path order; "" on several processes
    (it would move the whole model between hosts for bookkeeping)."""
    import hashlib

    if jax.process_count() > 1:
        return ""
    h = hashlib.sha256()
    for path, value in sorted(nnx.to_flat_state(params), key=lambda kv: tuple(map(str, kv[0]))):
        array = np.asarray(jax.device_get(value.get_value() if hasattr(value, "get_value") else value), np.float32)
        h.update(f"{'/'.join(map(str, path))}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def restore_best(params, run_dir: Path):
    """The parameters of run_dir's best checkpoint, with the structure and shardings of ``params``."""
    ckpt = RunCheckpoints(run_dir / "checkpoints")
    try:
        return ckpt.restore_best(params)
    finally:
        ckpt.close()
