"""Row readers for the files data sets come in: JSONL(.gz), JSON lists, Parquet, and ``datasets`` folders.

``read_rows(path)`` yields ``(n, row)``: ``n`` is the line number in a JSONL file and the 1-based row
number otherwise, so ``f"{path}:{n}"`` names a row in every error. Formats, told apart by name:

* ``.jsonl`` / ``.jsonl.gz``: one JSON object per line (blank lines skipped);
* ``.json`` (or ``.json.gz``): a JSON list of objects;
* ``.parquet``: read one row group at a time with pyarrow, so a large file is never loaded whole;
* a folder written by ``datasets``' ``save_to_disk``: its ``*.arrow`` files (Arrow IPC streams), in
  ``state.json``'s order when present, read one record batch at a time. No ``datasets`` dependency.

pyarrow comes with the train extra; only Parquet and Arrow need it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from predictor.errors import DataError

FORMATS = ".jsonl, .jsonl.gz, .json, .parquet, or a folder saved by datasets' save_to_disk"


def read_jsonl(path: str | os.PathLike, what: str = "data file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` for each non-blank line of a JSONL or JSONL.gz file.

    Errors name the file (as ``what``: "data file", "corpus file", ...) and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                yield lineno, row
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read {what} ({e})") from None


def _read_json_list(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read {what} ({e})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: a .json {what} must hold a list of rows, got {type(data).__name__}")
    for n, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        from predictor.errors import MissingExtraError

        raise MissingExtraError("train", "pyarrow") from None
    return pyarrow


def _read_parquet(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    pa = _pyarrow()
    try:
        parquet = pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: not a readable Parquet {what} ({' '.join(str(e).split())[:160]})") from None
    n = 0
    for group in range(parquet.num_row_groups):
        try:
            rows = parquet.read_row_group(group).to_pylist()
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{path}:{n + 1}: cannot read Parquet row group {group} "
                            f"({' '.join(str(e).split())[:160]})") from None
        for row in rows:
            n += 1
            yield n, row


def _arrow_files(folder: Path) -> list[Path]:
    state = folder / "state.json"
    if state.is_file():
        try:
            names = [f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
            return [folder / name for name in names]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{state}: not a datasets state file ({e})") from None
    return sorted(folder.glob("*.arrow"))


def _read_arrow_folder(folder: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    pa = _pyarrow()
    files = _arrow_files(folder)
    if not files:
        raise DataError(f"{folder}: a folder {what} must be saved by datasets' save_to_disk (no *.arrow files)")
    n = 0
    for file in files:
        try:
            with pa.memory_map(str(file)) as source:
                reader = pa.ipc.open_stream(source)
                for batch in reader:
                    for row in batch.to_pylist():
                        n += 1
                        yield n, row
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{file}: not a readable Arrow file ({' '.join(str(e).split())[:160]})") from None


def read_rows(path: str | os.PathLike, what: str = "data file") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` of a data file in any supported format; DataError naming the file and row."""
    path = Path(path)
    if path.is_dir():
        return _read_arrow_folder(path, what)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".jsonl"):
        return read_jsonl(path, what)
    if name.endswith(".json"):
        return _read_json_list(path, what)
    if name.endswith(".parquet"):
        return _read_parquet(path, what)
    raise DataError(f"{path}: unsupported {what} type; use {FORMATS}")
