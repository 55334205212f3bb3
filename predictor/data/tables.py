"""Tables as basepick reads them: a CSV file or a list of dicts, as text cells with one-line errors.

Every reader of user input (candidates, labels, feature files) goes through ``read_table``, so a file
and the same rows passed from Python (``predictor.api``) are checked by the same code and their
errors name the same rows: ``FILE row N`` (N is the line in the file) or ``records[i]``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from predictor.errors import DataError


@dataclass(frozen=True)
class Table:
    name: str  # the file's path, or "records" for rows given as dicts
    header: list[str]
    rows: list[list[str]]  # each has len(header) cells, as text
    sha256: str  # of the file's bytes, or of the records written as CSV
    from_file: bool = True

    def row_name(self, i: int) -> str:
        """Data row ``i`` (0-based) as a user finds it: "row N" (line N of the file) or "records[i]"."""
        return f"row {i + 2}" if self.from_file else f"{self.name}[{i}]"

    def where(self, i: int) -> str:
        """Location of data row ``i`` for error messages: "FILE row N" or "records[i]"."""
        return f"{self.name} {self.row_name(i)}" if self.from_file else self.row_name(i)

    def column(self, name: str) -> int:
        return require_column(self.name, self.header, name)

    @property
    def label(self) -> str:
        """Short name for provenance records: the file's name, or "records"."""
        return Path(self.name).name if self.from_file else self.name


def read_table(source: str | Path | Iterable[Mapping] | Table) -> Table:
    """A CSV path, or an iterable of dicts (keys are column names), as a ``Table`` (a ``Table`` as it is:
    a caller that reads extra columns itself passes the table on instead of reading the source twice)."""
    if isinstance(source, Table):
        return source
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    return _from_records(source)


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Read a CSV file (comma-separated; tab-separated when its first line has tabs and no comma; UTF-8
    or UTF-16 with a byte-order mark) → (header, rows). Each row has len(header) fields."""
    table = _read_file(Path(path))
    return table.header, table.rows


def _read_file(path: Path) -> Table:
    try:
        if stat.S_ISCHR(path.stat().st_mode) or stat.S_ISBLK(path.stat().st_mode):
            raise DataError(f"{path}: a device, not a CSV file")  # /dev/zero would be read forever
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DataError(f"{path}: file is empty; expected a CSV with a header row")
    text = _decode(path, raw)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","  # Excel's "Unicode Text" is tab-separated
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc})") from None
    records = [r for r in records if any(cell.strip() for cell in r)]  # blank lines carry nothing
    if not records:
        raise DataError(f"{path}: no header row; expected a CSV with a header row")
    header = [name.strip() for name in records[0]]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: column {name!r} appears twice in the header; rename or remove one of them")
        seen.add(name)
    rows = records[1:]
    for lineno, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path} row {lineno}: {len(row)} fields but the header has {len(header)}; "
                "check quoting and that the file is comma-separated"
            )
    return Table(str(path), header, rows, hashlib.sha256(raw).hexdigest())


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 (with or without a byte-order mark) or UTF-16 (Excel's "Unicode Text", which has one).
    NUL bytes in anything else mean the file is not text."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(f"{path}: starts as UTF-16 text but does not decode as UTF-16; save it as UTF-8 CSV") from None
    if b"\x00" in raw:
        raise DataError(f"{path}: binary data (NUL bytes), not a CSV file; save it as CSV (UTF-8)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 CSV") from None


def _from_records(records: Iterable[Mapping]) -> Table:
    if isinstance(records, Mapping):
        raise DataError("records: expected a list of dicts (one per row), got one dict")
    try:
        records = list(records)
    except TypeError:
        raise DataError(f"records: expected a CSV path or a list of dicts, got {type(records).__name__}") from None
    header: list[str] = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise DataError(f"records[{i}]: expected a dict, got {type(record).__name__}")
        header += [str(k).strip() for k in record if str(k).strip() not in header]
    rows = [[_cell_text(f"records[{i}]", k, _get(record, k)) for k in header] for i, record in enumerate(records)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return Table("records", header, rows, hashlib.sha256(buf.getvalue().encode()).hexdigest(), from_file=False)


def _get(record: Mapping, key: str):
    for k, v in record.items():
        if str(k).strip() == key:
            return v
    return None


def _cell_text(where: str, key: str, value) -> str:
    """A Python value as the text a CSV cell would hold (None and NaN: empty)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}, column {key}: {type(value).__name__} is not a number or text")
    return repr(float(value)) if isinstance(value, float) else str(value)


def require_column(path: str | Path, header: list[str], name: str) -> int:
    if name in header:
        return header.index(name)
    hint = ""
    for sep, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if any(sep in h for h in header):
            hint = f"; the file seems to use {label} as delimiter, basepick reads comma-separated files"
            break
    raise DataError(f"{path}: no {name!r} column (found: {', '.join(h[:30] for h in header[:8])}){hint}")
