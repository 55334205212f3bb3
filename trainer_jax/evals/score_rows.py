"""Score tables on disk: per-prompt RewardBench results as JSONL(.gz), JSON rows or reward-bench's columnar
JSON, read with the location of every row (for one-line errors) and written atomically. No jax."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from predictor.data.atomic import atomic_file
from predictor.errors import DataError
from trainer_jax.data.readers import read_jsonl


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Write one JSON object per line, atomically (``predictor.data.atomic``)."""
    with atomic_file(path) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_score_rows(path: str | os.PathLike) -> list[tuple[str, dict[str, Any]]]:
    """Read a score table: JSONL(.gz) rows, a JSON list of rows, or the official columnar JSON dict.

    Returns ``(location, row)`` pairs; the location (``file:line`` or ``file: row i``) names the row in errors.
    """
    path = Path(path)
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        return require_dicts([(f"{path}:{n}", row) for n, row in read_jsonl(path)], str(path))
    if not name.endswith(".json"):
        raise DataError(f"{path}: unsupported score file type (use .jsonl, .jsonl.gz or .json)")
    try:
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: score file not found") from None
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read score file ({e})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if isinstance(data, list):
        return require_dicts([(f"{path}: row {i}", r) for i, r in enumerate(data, 1)], str(path))
    if isinstance(data, dict) and isinstance(data.get("subset"), list):
        return _columns_to_rows(data, str(path))
    raise DataError(f"{path}: expected a list of rows or a columnar dict with a 'subset' list")


def require_dicts(rows: list[tuple[str, Any]], source: str) -> list[tuple[str, dict[str, Any]]]:
    if not rows:
        raise DataError(f"{source}: no rows to score")
    for where, row in rows:
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return rows


def _columns_to_rows(data: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    # Official eval-set-scores files: {"subset": [...], "id": [...], "scores_chosen": [...], "model": "x"}.
    n = len(data["subset"])
    columns = {k: v for k, v in data.items() if isinstance(v, list)}
    for k, v in columns.items():
        if len(v) != n:
            raise DataError(f"{where}: column '{k}' has {len(v)} values, 'subset' has {n}")
    return require_dicts([(f"{where}: row {i + 1}", {k: v[i] for k, v in columns.items()}) for i in range(n)], where)


def locate(rows: Iterable[Mapping[str, Any]], source: str) -> list[tuple[str, Mapping[str, Any]]]:
    return require_dicts([(f"{source}: row {i}", r) for i, r in enumerate(rows, 1)], source)
