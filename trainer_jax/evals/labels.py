"""Append a trained reward model's RewardBench result to a label file in basepick's label schema.

The row carries ``predictor.data.labels.LABEL_KEY`` + ``TARGETS`` (model_id, recipe, train_data, eval, chat,
chat_hard, safety, reasoning, score; RewardBench points 0-100) plus run metadata columns (``label_row``;
``lrs_tried`` is read back by ``predictor.data.labels``). The rows are checked with
``predictor.data.labels.load_labels`` (they must stay consumable by ``basepick fit``), then the file is
rewritten atomically (``predictor.data.atomic``: a
temporary file renamed into place, with the umask's permissions). A row with the same key as the new one
is replaced.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from predictor.data.atomic import atomic_file, check_writable
from predictor.data.labels import LABEL_KEY, TARGETS, load_labels
from predictor.errors import DataError


def basepick_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("basepick")
    except PackageNotFoundError:
        return "unknown"


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.exists():
        return [], []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read label file ({exc})") from None


def check_label_file(path: str | os.PathLike) -> None:
    """DataError unless ``path`` is absent or a label file predictor.data.shipped.load_labels accepts."""
    path = Path(path)
    if path.exists():
        header, rows = _read(path)
        if rows:
            load_labels([path])
    else:
        check_writable(path)


def label_row(*, model_id: str, recipe: str, train_data: str, eval: str, scores: Mapping[str, float | None],
              run_dir, best: Mapping[str, Any], lrs_tried: int, seed: int, initial_accuracy: float | None,
              counts: Mapping[str, Any], max_length: int, truncate_left: bool, rewardbench: Mapping[str, Any],
              base_dir) -> dict[str, Any]:
    """A label row: the key and RewardBench points ``load_labels`` reads, then how the label was made.

    Besides the run's provenance it records what makes a label differ from the study's: ``lrs_tried``
    (the study's labels are the best of the recipe's whole grid; 1 = a single learning rate),
    ``max_length`` with the examples over it (``*_dropped`` or ``*_truncated``, of ``*_examples``, for
    training and validation), and the length and dtype RewardBench was scored at.
    """
    over = {}
    for split in ("train", "eval"):
        over[f"{split}_examples"] = counts[split] + counts[f"{split}_filtered"]
        over[f"{split}_dropped"] = counts[f"{split}_filtered"]
        over[f"{split}_truncated"] = counts[f"{split}_truncated"]
    return {"model_id": model_id, "recipe": recipe, "train_data": train_data, "eval": eval, **scores,
            "lrs_tried": lrs_tried, "lr": best["lr"], "steps": best["steps"], "seed": seed,
            "val_accuracy": round(best["best_accuracy"], 6),
            "initial_val_accuracy": None if initial_accuracy is None else round(initial_accuracy, 6),
            "max_length": max_length, "over_length": "truncate-left" if truncate_left else "drop", **over,
            "rewardbench_max_length": rewardbench["max_length"], "rewardbench_dtype": rewardbench["dtype"],
            "rewardbench_truncated": rewardbench["completions_truncated"], "run_dir": str(Path(run_dir).absolute()),
            "base_dir": str(Path(base_dir).absolute()), "basepick_version": basepick_version()}


def append_label(path: str | os.PathLike, row: Mapping[str, Any]) -> bool:
    """Add ``row`` to the label file (created if absent); returns True when it replaced a row of the same key."""
    path = Path(path)
    header, rows = _read(path)
    new = {k: "" if v is None else (f"{v:.4f}" if isinstance(v, float) and k in TARGETS else str(v))
           for k, v in row.items()}
    columns = header or [*LABEL_KEY, *TARGETS]
    columns += [c for c in new if c not in columns]
    key = tuple(new[k] for k in LABEL_KEY)
    kept = [r for r in rows if tuple((r.get(k) or "").strip() for k in LABEL_KEY) != key]
    replaced = len(kept) != len(rows)
    load_labels([[*kept, new]])  # the file must stay consumable by `basepick fit`
    with atomic_file(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept + [new])
    return replaced
