"""``basepick train``: train a reward model on a local base model, export it, optionally score and label it.

Order of work, top to bottom in ``train``:

1. validate everything cheap and everything that can be wrong before any directory is created: config,
   base directory (weights load with the right shapes), tokenizer, training and validation data, the
   RewardBench file and the label file;
2. work in ``RUN_DIR.partial`` (kept after a crash or a halt: ``--resume`` continues it); ``config.json``;
3. one run per learning rate (``--lr-sweep``: the recipe's grid), each with its own checkpoints and
   ``metrics.jsonl`` records; the best validation accuracy wins;
4. export the winner's best checkpoint to ``model/`` (a transformers ``*ForSequenceClassification`` dir);
5. with ``--rewardbench``: score it (``rewardbench.json`` + per-prompt ``rewardbench_scores.jsonl``);
6. ``summary.json``, drop the resume checkpoints, rename ``RUN_DIR.partial`` to ``RUN_DIR``;
7. with ``--labels-out``: append the label row.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from predictor.errors import ArtifactError, DataError
from trainer_jax import require_train_extra
from trainer_jax.train.recipes import TrainConfig, check_config

SCHEMA_VERSION = 1
EVAL_NAME = "rewardbench-v1"


@dataclass
class TrainResult:
    """What ``train`` did; ``to_json`` is the CLI's output and RUN_DIR/summary.json."""

    run_dir: str  # RUN_DIR when finished, RUN_DIR.partial when halted
    finished: bool  # False: halted (resume with resume=True)
    lr: float | None  # learning rate of the exported model
    best_accuracy: float | None  # its validation accuracy, 0-1
    merge_weights: list[float] | None  # regression: weights that scalarise the 5 outputs
    runs: list[dict] = field(default_factory=list)  # one summary per learning rate
    data: dict = field(default_factory=dict)  # example counts (kept, filtered, truncated)
    rewardbench: dict | None = None  # RewardBench v1 summary of the exported model
    label: dict | None = None  # the row appended to --labels-out

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **self.__dict__}


def _partial_dir(out: Path) -> Path:
    return out.parent / (out.name + ".partial")


def _preflight_rewardbench(path: Path, tokenizer_dir: Path, need_all_sections: bool) -> None:
    """DataError now, not after training, for an unreadable RewardBench file or one that cannot label."""
    from trainer_jax.data.tokenizer import load_tokenizer
    from trainer_jax.evals import rewardbench
    from trainer_jax.evals.score import encode_row, read_pairs

    rows = read_pairs(path)
    tok = load_tokenizer(tokenizer_dir)
    for lineno, row in rows:
        if not isinstance(row.get("subset"), str):
            raise DataError(f"{path}:{lineno}: RewardBench rows need a 'subset' string")
        encode_row(tok, row, f"{path}:{lineno}")
    dummy = [{"subset": r["subset"], "id": r.get("id", n), "chosen_score": 0.0, "rejected_score": 0.0}
             for n, r in rows]
    result = rewardbench.score_v1(dummy, source=str(path))
    if need_all_sections and result.overall is None:
        missing = ", ".join(s for s, subsets in result.missing.items() if s not in result.sections)
        raise DataError(f"{path}: no subset of RewardBench section(s) {missing}; a label needs all four sections")


def _prepare_data(base_dir: Path, data: Path, eval_data: Path, config: TrainConfig):
    from trainer_jax.data import encode, schemas
    from trainer_jax.data.tokenizer import load_tokenizer

    tok = load_tokenizer(base_dir)
    tcfg = encode.TokenizeConfig(max_length=config.max_length, truncate_left=config.truncate_left)
    if config.recipe == "regression":
        train = encode.tokenize_regression(schemas.read_regression(data), tok, tcfg)
    else:
        train = encode.tokenize_preferences(schemas.read_preferences(data), tok, tcfg)
    val = encode.tokenize_preferences(schemas.read_preferences(eval_data), tok, tcfg)
    counts = {"train": len(train.sequences), "train_filtered": train.n_filtered, "train_truncated": train.n_truncated,
              "eval": len(val.sequences), "eval_filtered": val.n_filtered, "eval_truncated": val.n_truncated}
    return train, val, counts


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


def replicate(model, mesh):
    """The model with every parameter replicated on the mesh (fully addressable from any process)."""
    import jax
    from flax import nnx

    from trainer_jax.train import mesh as M

    graphdef, state = nnx.split(model)
    state = jax.jit(lambda s: s, out_shardings=M.replicated(mesh))(state)
    return nnx.merge(graphdef, state)


def _same_run(saved: dict, new: dict) -> bool:
    strip = lambda rec: {**rec, "config": {k: v for k, v in rec["config"].items() if k != "halt_after"}}  # noqa: E731
    return strip(saved) == strip(new)


def train(base_dir, data, eval_data, out, config: TrainConfig, *, lrs: list[float] | None = None,
          resume: bool = False, labels_out=None, model_id: str | None = None, rewardbench=None,
          train_data_name: str | None = None, log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train, select, export and (optionally) score and label a reward model; see the module docstring."""
    require_train_extra()
    check_config(config)
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
    if not out.parent.is_dir():
        raise DataError(f"{out.parent}: parent directory of --out does not exist")
    import jax
    import jax.numpy as jnp

    from trainer_jax.evals import labels
    from trainer_jax.models.hf_import import load_reward_model, read_model_dir
    from trainer_jax.train import mesh as M
    from trainer_jax.train.loop import restore_best, run

    src = read_model_dir(base_dir)
    if src.is_classifier and src.num_labels != config.num_labels:
        raise ArtifactError(f"{base_dir} is a classifier with {src.num_labels} outputs; the {config.recipe} "
                            f"recipe needs {config.num_labels}: start from the base model instead")
    train_set, val_set, counts = _prepare_data(base_dir, data, eval_data, config)
    if rewardbench is not None:
        _preflight_rewardbench(Path(rewardbench), base_dir, need_all_sections=labels_out is not None)
    if labels_out is not None:
        labels.check_label_file(labels_out)
    if jax.device_count() % config.mesh_data:
        raise DataError(f"--mesh-data {config.mesh_data} does not divide the {jax.device_count()} devices")
    mesh = M.make_mesh(data=config.mesh_data)
    if config.micro_batch % M.rows_per_step_multiple(mesh):
        raise DataError(f"micro batch {config.micro_batch} must be a multiple of the {M.rows_per_step_multiple(mesh)} "
                        "devices of the mesh")

    def load():
        return load_reward_model(base_dir, num_labels=config.num_labels, dtype=jnp.dtype(config.dtype),
                                 param_dtype=jnp.float32, sharding=M.param_sharding(mesh), seed=config.seed)

    model = load()  # also checks every tensor's name and shape before RUN_DIR.partial exists
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
    # ---- 3. one run per learning rate
    results = []
    for lr in lrs:
        run_dir = partial / (f"lr-{lr:.1e}" if len(lrs) > 1 else "run")
        done = run_dir / "result.json"
        if done.is_file():
            results.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        if main:
            run_dir.mkdir(exist_ok=True)
        result = run(model if model is not None else load(), train_set, val_set, config, lr, run_dir, mesh,
                     log_path=partial / "metrics.jsonl", resume=resume, log=log)
        model = None
        if not result.finished:
            return TrainResult(str(partial), False, None, None, None, results + [result.to_json()], counts)
        if main:
            done.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        results.append(result.to_json())
    # ---- 4. export the best run's best checkpoint
    best_i = max(range(len(results)), key=lambda j: (results[j]["best_accuracy"], -j))
    best = results[best_i]
    best_dir = partial / (f"lr-{best['lr']:.1e}" if len(lrs) > 1 else "run")
    from trainer_jax.models.hf_export import export_reward_model

    best_model = replicate(restore_best(load(), best_dir), mesh)  # whole arrays: process 0 can write them
    outcome = TrainResult(str(out), True, best["lr"], best["best_accuracy"], best["merge_weights"], results, counts)
    if not main:
        return outcome
    export_reward_model(best_model, partial / "model", source_dir=base_dir, overwrite=True)
    del best_model
    # ---- 5. RewardBench
    if rewardbench is not None:
        from trainer_jax.evals.score import score_pairs

        report = score_pairs(partial / "model", rewardbench, out=partial / "rewardbench_scores.jsonl",
                             batch_size=config.micro_batch, weights=best["merge_weights"])
        outcome.rewardbench = report.rewardbench.to_dict()
        (partial / "rewardbench.json").write_text(json.dumps(outcome.rewardbench, indent=2) + "\n", encoding="utf-8")
    # ---- 6. finish RUN_DIR (the resume checkpoints go once the run is complete under its final name)
    (partial / "summary.json").write_text(json.dumps(outcome.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.rename(out)
    for result in results:
        shutil.rmtree(out / (f"lr-{result['lr']:.1e}" if len(lrs) > 1 else "run") / "checkpoints", ignore_errors=True)
    # ---- 7. label row
    if labels_out is not None:
        scores = report.rewardbench.label_scores()
        outcome.label = {"model_id": model_id, "recipe": config.recipe,
                         "train_data": train_data_name or data.name.split(".")[0], "eval": EVAL_NAME, **scores,
                         "run_dir": str(out.absolute()), "lr": best["lr"], "steps": best["steps"],
                         "seed": config.seed, "val_accuracy": round(best["best_accuracy"], 6),
                         "base_dir": str(base_dir.absolute()), "basepick_version": labels.basepick_version()}
        labels.append_label(labels_out, outcome.label)
        (out / "summary.json").write_text(json.dumps(outcome.to_json(), indent=2) + "\n", encoding="utf-8")
    return outcome
