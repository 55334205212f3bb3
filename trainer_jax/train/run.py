"""``basepick train``: train a reward model on a local base model, export it, optionally score and label it.

Order of work, top to bottom in ``train``:

1. validate everything cheap and everything that can be wrong before any directory is created: config,
   base directory (tensor names and shapes from the safetensors headers), tokenizer (its ids must fit the
   embedding), training and validation data (no shared prompts unless ``allow_overlap``), the RewardBench
   file, the label file, the mesh, and a pad token for the exported model that occurs nowhere in the
   data; say what makes the run unlike the study's (all steps in warm-up, too few steps, over 1% of
   examples over-length, one learning rate for a label);
2. load the base sharded over the mesh (each process reads only its shards), build the jitted steps
   once for every learning rate; work in ``RUN_DIR.partial`` (kept after a crash or a stop: ``--resume``
   continues it); ``config.json``; validation accuracy of the untrained model (step 0);
3. one run per learning rate (``--lr-sweep``: the recipe's grid), each with its own checkpoints and
   ``metrics.jsonl`` records; the best validation accuracy wins. SIGTERM/SIGINT saves a resume state and
   stops cleanly;
4. export the winner's best checkpoint to ``model/`` (a transformers ``*ForSequenceClassification`` dir;
   all processes gather, process 0 writes);
5. with ``--rewardbench``: score it at the run's ``max_length`` in float32 (``rewardbench.json`` + per-prompt
   ``rewardbench_scores.jsonl``);
6. ``summary.json``, drop the resume checkpoints, rename ``RUN_DIR.partial`` to ``RUN_DIR``;
7. with ``--labels-out``: append the label row. The other processes wait at a barrier until process 0
   is done, so every process ends together.
"""

from __future__ import annotations

import json
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from predictor.data.atomic import check_writable
from predictor.errors import ArtifactError, DataError
from trainer_jax import enable_compile_cache, require_train_extra
from trainer_jax.data.schemas import ATTRIBUTES
from trainer_jax.train.recipes import TrainConfig, check_config

SCHEMA_VERSION = 1
EVAL_NAME = "rewardbench-v1"
MIN_STEPS = 10  # fewer optimizer steps than this is not a reward-model training run
MAX_OVER_LENGTH = 0.01  # above this share of over-length examples, the data set depends on the tokenizer
RB_DTYPE = "float32"  # RewardBench of the exported (float32) model: exact, whatever the training compute dtype


@dataclass
class TrainResult:
    """What ``train`` did; ``to_json`` is the CLI's output and RUN_DIR/summary.json."""

    run_dir: str  # RUN_DIR when finished, RUN_DIR.partial when stopped
    finished: bool  # False: stopped early (resume with resume=True)
    lr: float | None  # learning rate of the exported model
    best_accuracy: float | None  # its validation accuracy, 0-1
    merge_weights: dict[str, float] | None  # regression: attribute -> weight that scalarises the 5 outputs
    runs: list[dict] = field(default_factory=list)  # one summary per learning rate
    data: dict = field(default_factory=dict)  # example counts (kept, filtered, truncated)
    runtime: dict = field(default_factory=dict)  # attention kernel, compiled programs, pad token, checkpoint sizes
    rewardbench: dict | None = None  # RewardBench v1 summary of the exported model
    label: dict | None = None  # the row appended to --labels-out
    stopped_by: str | None = None  # unfinished: "SIGTERM", "SIGINT" or "halt_after" (the preemption drill)
    initial_accuracy: float | None = None  # validation accuracy of the untrained model (step 0), 0-1
    warnings: list[str] = field(default_factory=list)  # what makes this run unlike the study's, said before it

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **self.__dict__}


def _partial_dir(out: Path) -> Path:
    return out.parent / (out.name + ".partial")


def _run_name(lr: float, n_lrs: int) -> str:
    return f"lr-{lr:.1e}" if n_lrs > 1 else "run"


def _preflight_rewardbench(path: Path, tok, for_label: bool) -> list[int]:
    """DataError now, not after training, for an unreadable RewardBench file or one that cannot label.

    Returns every token id its completions encode to (the exported model's pad id must be none of them).
    """
    from trainer_jax.data.encode import tokenize_items
    from trainer_jax.data.schemas import read_examples
    from trainer_jax.evals import rewardbench

    examples = read_examples(path, "score")
    if examples.schema == "rewardbench2" or any(item.subset is None for item in examples.items):
        raise DataError(f"{path}: --rewardbench needs RewardBench v1 rows, each naming its 'subset' "
                        f"(read as {examples.schema} rows)")
    encoded, _ = tokenize_items(examples.items, tok, 10**9)
    result = rewardbench.preflight(examples.items, "v1", str(path))
    if for_label and result.overall is None:
        missing = ", ".join(s for s in result.missing if s not in result.sections)
        raise DataError(f"{path}: no subset of RewardBench section(s) {missing}; a label needs all four sections")
    return sorted({i for seqs in encoded for seq in seqs for i in seq})


def _prepare_data(tok, data: Path, eval_data: Path, config: TrainConfig, allow_overlap: bool):
    from trainer_jax.data import encode
    from trainer_jax.data.schemas import prompt_key, read_examples

    tcfg = encode.TokenizeConfig(max_length=config.max_length, truncate_left=config.truncate_left)
    use = "regression" if config.recipe == "regression" else "preference"
    train = read_examples(data, use, schema=config.schema, split=config.split, strength_margin=config.strength_margin)
    val = read_examples(eval_data, "preference", schema=config.eval_schema, split=config.eval_split)
    seen = {key for key in map(prompt_key, train.items) if key is not None}
    shared = sum(prompt_key(e) in seen for e in val.items)
    if shared and not allow_overlap:
        raise DataError(f"{shared} of {len(val.items)} validation examples ({eval_data}) share their prompt with "
                        f"training examples ({data}), e.g. HelpSteer2's validation rows in a --data file of both "
                        "splits: validation accuracy, which picks the checkpoint and the learning rate, would be "
                        "inflated; remove them from --data, or pass --allow-overlap")
    tokenize = encode.tokenize_regression if use == "regression" else encode.tokenize_preferences
    train_set = tokenize(train.items, tok, tcfg)
    val_set = encode.tokenize_preferences(val.items, tok, tcfg)
    counts = {"train_schema": train.schema, "eval_schema": val.schema,
              **{f"train_{k}": v for k, v in train.counts.items()}, **{f"eval_{k}": v for k, v in val.counts.items()},
              "train": len(train_set.sequences), "train_filtered": train_set.n_filtered,
              "train_truncated": train_set.n_truncated, "eval": len(val_set.sequences),
              "eval_filtered": val_set.n_filtered, "eval_truncated": val_set.n_truncated, "prompt_overlap": shared}
    return train_set, val_set, counts


def run_warnings(config: TrainConfig, total_steps: int, counts: dict, lrs: list[float], labelling: bool) -> list[str]:
    """What makes this run unlike the study's, in words, before it starts."""
    out = []
    if total_steps <= config.warmup_steps:
        out.append(f"all {total_steps} optimizer steps fall inside the {config.warmup_steps}-step warm-up: the "
                   f"learning rate never reaches {lrs[0] if len(lrs) == 1 else 'its peak'}; lower --warmup-steps "
                   "or --batch-size")
    if total_steps < MIN_STEPS:
        out.append(f"only {total_steps} optimizer step(s) ({counts['train']} examples, batch {config.global_batch}, "
                   f"{config.epochs} epoch(s)): fewer than {MIN_STEPS}; lower --batch-size or give more data")
    for split in ("train", "eval"):
        over = counts[f"{split}_filtered"] + counts[f"{split}_truncated"]
        total = counts[split] + counts[f"{split}_filtered"]
        if over > MAX_OVER_LENGTH * total:
            how = "left-truncated" if config.truncate_left else "dropped"
            out.append(f"{over} of {total} {split} examples ({100 * over / total:.1f}%) are longer than --max-length "
                       f"{config.max_length} tokens and were {how}: above {100 * MAX_OVER_LENGTH:g}% the {split} set "
                       "depends on the tokenizer, i.e. on the family; raise --max-length")
    if labelling and len(lrs) == 1:
        out.append(f"the label comes from one learning rate ({lrs[0]:g}); the study's labels are the best of the "
                   "recipe's grid (--lr-sweep); the row records lrs_tried=1")
    return out


def _token_ids(*datasets) -> set[int]:
    import numpy as np

    return {int(i) for d in datasets for seqs in d.sequences for s in seqs for i in np.unique(s)}


def _config_record(config: TrainConfig, base_dir, data, eval_data, lrs) -> dict:
    return {"schema_version": SCHEMA_VERSION, "base_dir": str(Path(base_dir).absolute()),
            "data": str(Path(data).absolute()), "eval_data": str(Path(eval_data).absolute()),
            "lrs": list(lrs), "config": config.to_dict()}


def _barrier(name: str) -> None:
    """Wait for every process of a multi-host run (no-op on one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"basepick-train-{name}")


def _same_run(saved: dict, new: dict) -> bool:
    strip = lambda rec: {**rec, "config": {k: v for k, v in rec["config"].items() if k != "halt_after"}}  # noqa: E731
    return strip(saved) == strip(new)


def _initial_accuracy(log_path: Path) -> float | None:
    """The step-0 validation accuracy a stopped run logged, or None."""
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("step") == 0 and record.get("lr") is None:
                return record["eval_accuracy"]
    return None


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _checkpoint_sizes(run_dir: Path, n_params: int) -> dict:
    """Bytes per parameter of the newest resume state and best checkpoint on disk (measured)."""
    out = {}
    for name in ("state", "best"):
        steps = [p for p in (run_dir / "checkpoints" / name).glob("*") if p.name.isdigit()]
        if steps:
            out[f"{name}_bytes_per_param"] = round(_dir_bytes(max(steps, key=lambda p: int(p.name))) / n_params, 3)
    return out


def train(base_dir, data, eval_data, out, config: TrainConfig, *, lrs: list[float] | None = None,
          resume: bool = False, labels_out=None, model_id: str | None = None, rewardbench=None,
          train_data_name: str | None = None, allow_overlap: bool = False, log: Callable[[dict], None] | None = None,
          note: Callable[[str], None] | None = None) -> TrainResult:
    """Train, select, export and (optionally) score and label a reward model; see the module docstring.

    ``allow_overlap``: accept validation examples whose prompt also occurs in the training data.
    """
    require_train_extra()
    check_config(config)
    note = note or (lambda message: None)
    base_dir, data, eval_data, out = Path(base_dir), Path(data), Path(eval_data), Path(out)
    lrs = list(lrs) if lrs else [config.lr]
    # ---- 1. validate before touching the file system
    if labels_out is not None and (not model_id or rewardbench is None):
        raise DataError("--labels-out needs --model-id and --rewardbench FILE (the scores of the label)")
    if out.exists():
        raise DataError(f"{out} already exists; choose a new --out directory")
    partial = _partial_dir(out)
    if partial.exists() and not resume:
        raise DataError(f"{partial} holds an unfinished run; pass --resume to continue it or delete it")
    if resume and not partial.exists():
        raise DataError(f"nothing to resume: {partial} does not exist")
    check_writable(out)
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from trainer_jax.data.tokenizer import check_ids_fit, choose_pad_token, load_tokenizer
    from trainer_jax.evals import labels
    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.hf_import import load_reward_model, read_model_dir
    from trainer_jax.train import mesh as M
    from trainer_jax.train.checkpoint import abstract_like
    from trainer_jax.train.loop import StopRequest, batch_configs, build_steps, evaluate, restore_best, run, schedule

    enable_compile_cache()
    src = read_model_dir(base_dir)
    if src.is_classifier and src.num_labels != config.num_labels:
        raise ArtifactError(f"{base_dir} is a classifier with {src.num_labels} outputs; the {config.recipe} "
                            f"recipe needs {config.num_labels}: start from the base model instead")
    tok = load_tokenizer(base_dir)
    train_set, val_set, counts = _prepare_data(tok, data, eval_data, config, allow_overlap)
    used_ids = _token_ids(train_set, val_set)
    if rewardbench is not None:
        used_ids.update(_preflight_rewardbench(Path(rewardbench), tok, for_label=labels_out is not None))
    check_ids_fit(used_ids, src.config.vocab_size, base_dir)
    pad = choose_pad_token(tok, src.config.vocab_size, used_ids)
    if labels_out is not None:
        labels.check_label_file(labels_out)
    if jax.device_count() % config.mesh_data:
        raise DataError(f"--mesh-data {config.mesh_data} does not divide the {jax.device_count()} devices")
    mesh = M.make_mesh(data=config.mesh_data)
    if config.micro_batch % M.rows_per_step_multiple(mesh):
        raise DataError(f"micro batch {config.micro_batch} must be a multiple of the {M.rows_per_step_multiple(mesh)} "
                        "devices of the mesh")
    attention = choose_attention(src.config, jnp.dtype(config.dtype))
    note(attention.describe())
    sched = schedule(len(train_set.sequences), config)
    warnings = run_warnings(config, sched.total_steps, counts, lrs, labels_out is not None)
    for warning in warnings:
        note(warning)

    def load_params():
        model = load_reward_model(base_dir, num_labels=config.num_labels, dtype=jnp.dtype(config.dtype),
                                  param_dtype=jnp.float32, sharding=M.param_sharding(mesh), seed=config.seed)
        return nnx.split(model, nnx.Param, ...)

    graphdef, params, rest = load_params()  # also checks every tensor's name and shape before RUN_DIR.partial
    target = abstract_like(params)  # restores land with the same shapes and shardings
    n_params = sum(x.size for x in jax.tree.leaves(params))
    steps = build_steps(graphdef, params, rest, config, sched, mesh, attention.implementation)
    runtime = {"attention": attention.implementation, "attention_reason": attention.reason,
               "buckets": list(config.length_buckets), "pad_token": pad.to_json(), "parameters": int(n_params)}
    # ---- 2. the working directory
    record = _config_record(config, base_dir, data, eval_data, lrs)
    if resume:
        try:
            saved = json.loads((partial / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ArtifactError(f"{partial}/config.json is missing or unreadable; delete {partial} and start afresh") from None
        if not _same_run(saved, record):
            raise DataError(f"{partial}/config.json differs from this command's settings; resume with the same ones")
    main = jax.process_index() == 0  # multi-host: process 0 writes files, every process computes
    _barrier("checked")  # every process saw no RUN_DIR before process 0 creates RUN_DIR.partial
    if main:
        partial.mkdir(exist_ok=resume)
        (partial / "config.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    _barrier("created")
    initial = _initial_accuracy(partial / "metrics.jsonl") if resume else None  # measured before the stop
    if initial is None:
        initial, weights = evaluate(steps, params, val_set, batch_configs(config)[1], mesh,
                                    config.recipe == "regression")
        if main:  # the untrained model, the same for every learning rate: "lr" null
            record = {"lr": None, "step": 0, "eval_accuracy": initial,
                      **({"merge_weights": weights} if weights else {})}
            with (partial / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    note(f"validation accuracy before training (step 0): {100 * initial:.2f}%")
    # ---- 3. one run per learning rate
    results = []
    with StopRequest() as stop:
        for lr in lrs:
            run_dir = partial / _run_name(lr, len(lrs))
            done = run_dir / "result.json"
            if done.is_file():
                results.append(json.loads(done.read_text(encoding="utf-8")))
                continue
            if main:
                run_dir.mkdir(exist_ok=True)
            _barrier(f"run-{lr}")
            result = run(steps, params if params is not None else load_params()[1], train_set, val_set, config, lr,
                         run_dir, mesh, log_path=partial / "metrics.jsonl", resume=resume, stop=stop, log=log)
            params = None  # donated to the train step
            runtime.update(compiled=dict(steps.compiled), **_checkpoint_sizes(run_dir, n_params))
            if not result.finished:
                by = signal.Signals(stop.signal).name if stop.signal is not None else "halt_after"
                return TrainResult(str(partial), False, None, None, None, results + [result.to_json()], counts, runtime,
                                   stopped_by=by, initial_accuracy=initial, warnings=warnings)
            if main:
                done.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
            results.append(result.to_json())
    # ---- 4. export the best run's best checkpoint (every process gathers, process 0 writes)
    best_i = max(range(len(results)), key=lambda j: (results[j]["best_accuracy"], -j))
    best = results[best_i]
    from trainer_jax.models.hf_export import export_reward_model

    best_model = nnx.merge(graphdef, restore_best(target, partial / _run_name(best["lr"], len(lrs))), rest)
    merge = dict(zip(ATTRIBUTES, best["merge_weights"])) if best["merge_weights"] else None
    export_reward_model(best_model, partial / "model", source_dir=base_dir, overwrite=True, pad=pad, merge=merge,
                        fold=not config.attribute_head)
    del best_model
    outcome = TrainResult(str(out), True, best["lr"], best["best_accuracy"], merge, results, counts, runtime,
                          initial_accuracy=initial, warnings=warnings)
    if main:
        _finish(outcome, partial, out, config, best, lrs, rewardbench, labels_out, model_id, train_data_name, data,
                base_dir, note)
    _barrier("finished")
    return outcome


def _finish(outcome: TrainResult, partial: Path, out: Path, config: TrainConfig, best: dict, lrs, rewardbench,
            labels_out, model_id, train_data_name, data: Path, base_dir: Path, note: Callable[[str], None]) -> None:
    """Process 0: RewardBench, summary, rename RUN_DIR.partial to RUN_DIR, label row (steps 5-7)."""
    from trainer_jax.evals import labels

    report = None
    if rewardbench is not None:
        from trainer_jax.evals.score import score_file

        report = score_file(partial / "model", rewardbench, out=partial / "rewardbench_scores.jsonl",
                            batch_size=config.micro_batch, max_length=config.max_length, dtype=RB_DTYPE)
        truncated = report.counts["completions_truncated"]
        note(f"RewardBench scored in {RB_DTYPE} at --max-length {config.max_length} ({truncated} completion(s) "
             "kept their last tokens)")
        outcome.rewardbench = {**report.rewardbench.to_dict(), "max_length": config.max_length, "dtype": RB_DTYPE,
                               "completions_truncated": truncated}
        (partial / "rewardbench.json").write_text(json.dumps(outcome.rewardbench, indent=2) + "\n", encoding="utf-8")
    (partial / "summary.json").write_text(json.dumps(outcome.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.rename(out)
    for result in outcome.runs:  # the resume checkpoints go once the run is complete under its final name
        shutil.rmtree(out / _run_name(result["lr"], len(lrs)) / "checkpoints", ignore_errors=True)
    if labels_out is not None:
        scores = report.rewardbench.label_scores()
        outcome.label = labels.label_row(
            model_id=model_id, recipe=config.recipe, train_data=train_data_name or data.name.split(".")[0],
            eval=EVAL_NAME + ("-partial" if report.rewardbench.partial else ""), scores=scores, run_dir=out,
            best=best, lrs_tried=len(lrs), seed=config.seed, initial_accuracy=outcome.initial_accuracy,
            counts=outcome.data, max_length=config.max_length, truncate_left=config.truncate_left,
            rewardbench=outcome.rewardbench, base_dir=base_dir)
        labels.append_label(labels_out, outcome.label)
        (out / "summary.json").write_text(json.dumps(outcome.to_json(), indent=2) + "\n", encoding="utf-8")


def render_table(result: TrainResult) -> str:
    """The outcome as aligned text lines (JSON with --format json)."""
    if not result.finished:
        return f"run dir        {result.run_dir} (unfinished: continue with --resume)\n"
    lines = [f"run dir        {result.run_dir}", f"learning rate  {result.lr:g}",
             f"val accuracy   {100 * result.best_accuracy:.2f}%"
             + ("" if result.initial_accuracy is None else f" (untrained: {100 * result.initial_accuracy:.2f}%)")]
    if result.merge_weights:
        lines.append("merge weights  " + ", ".join(f"{k} {w:g}" for k, w in result.merge_weights.items()))
    if result.rewardbench is not None:
        lines.append("RewardBench    " + ", ".join(f"{k} {100 * v:.2f}" for k, v in result.rewardbench["sections"].items()))
    return "\n".join(lines) + "\n"
