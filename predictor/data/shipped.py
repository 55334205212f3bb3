"""Find and read basepick's shipped tables: the leaderboard snapshot and the study's model metadata.

Shipped data lives in ``data/`` at the top of a source checkout (editable installs read it there) and
in ``predictor/_data/`` inside a wheel. Every reader returns plain Python/numpy structures with one
row per model and raises ``DataError`` with the file, line and column on bad input.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictor.data import features as F
from predictor.data.atomic import atomic_file
from predictor.data.tables import read_csv, require_column
from predictor.errors import DataError

V2_FILE = "open_llm_leaderboard_v2.csv"
V1_FILE = "open_llm_leaderboard_v1.csv"
MODELS_FILE = "seed_paper_models.csv"
LABELS_FILE = "seed_paper_rewardbench.csv"


def data_root() -> Path:
    """The folder holding ``benchmarks/`` and ``predictor/``: wheel layout first, then the checkout."""
    here = Path(__file__).resolve().parent.parent  # predictor/
    for root in (here / "_data", here.parent / "data"):
        if (root / "benchmarks" / V2_FILE).is_file():
            return root
    raise DataError(
        f"basepick's shipped data is missing (looked in {here / '_data'} and {here.parent / 'data'}): "
        "reinstall basepick"
    )


def benchmarks_dir() -> Path:
    return data_root() / "benchmarks"


def shipped_predictor_dir() -> Path:
    return data_root() / "predictor"


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (checkpoint shards can be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


# --------------------------------------------------------------------------------------------------
# The shipped snapshot: one row per model


@dataclass
class Snapshot:
    """Feature table of every model the shipped data knows: Open LLM Leaderboard v2 ∪ v1 ∪ seed models.

    ``columns[name][i]`` is feature ``name`` of model ``ids[i]`` (NaN when unknown).
    ``v2_ids`` lists the models of the v2 leaderboard, the pool of ``rank --pool leaderboard``.
    """

    ids: list[str]
    columns: dict[str, np.ndarray]
    v2_ids: list[str]
    index: dict[str, int] = field(init=False)
    _folded: dict[str, str | None] | None = field(init=False, default=None, repr=False)  # casefold → id, lazily

    def __post_init__(self) -> None:
        self.index = {model_id: i for i, model_id in enumerate(self.ids)}

    def find(self, model_id: str) -> str | None:
        """The snapshot's spelling of ``model_id``: itself, else the one id equal to it without case
        (Hugging Face ids are case-insensitive), else None."""
        if model_id in self.index:
            return model_id
        if self._folded is None:
            folded: dict[str, str | None] = {}
            for known in self.ids:
                key = known.casefold()
                folded[key] = None if key in folded else known  # two ids differing in case only: ambiguous
            self._folded = folded
        return self._folded.get(model_id.casefold())

    def row(self, model_id: str) -> dict[str, float] | None:
        i = self.index.get(model_id)
        if i is None:
            return None
        return {name: float(col[i]) for name, col in self.columns.items()}


def _v2_preference(row: list[str], c: dict[str, int]) -> tuple:
    """Sort key: the best of several v2 rows of one model sorts first.

    The rule, in order: a row evaluated with the chat template (ids ending in ``_True``) when the model
    has one — that is how users run chat models; the official provider's row; bfloat16, then float16,
    then anything else; the latest submission; finally the row id, so the choice is deterministic.
    """
    return (
        row[c["model_has_chat_template"]].upper() != "TRUE",
        row[c["features_is_official_provider"]].upper() != "TRUE",
        _PRECISION_RANK.get(row[c["model_precision"]], 2),
        _negated(row[c["metadata_submission_date"]]),
        row[c["id"]],
    )


def _v1_preference(row: list[str], c: dict[str, int]) -> tuple:
    """Sort key for several v1 rows of one model: not flagged, bfloat16 > float16 > other, latest, sha."""
    return (
        row[c["flagged"]].upper() == "TRUE",
        _PRECISION_RANK.get(row[c["precision"]], 2),
        _negated(row[c["date"]]),
        row[c["model_sha"]],
    )


_PRECISION_RANK = {"bfloat16": 0, "float16": 1}


def _negated(text: str) -> tuple:
    # ISO dates sort as strings; negating each character code makes later dates sort first.
    return tuple(-ord(ch) for ch in text)


def _best_rows(path: Path, id_column: str, preference) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Read a leaderboard file → (column index, model id → its preferred row)."""
    header, rows = read_csv(path)
    c = {name: j for j, name in enumerate(header)}
    j = require_column(path, header, id_column)
    best: dict[str, list[str]] = {}
    for row in rows:
        model_id = row[j].strip()
        if model_id and (model_id not in best or preference(row, c) < preference(best[model_id], c)):
            best[model_id] = row
    return c, best


def _numbers(rows: list[list[str]], j: int) -> np.ndarray:
    """Column j of rows → float array; empty or non-numeric cells are NaN."""
    cells = [r[j].strip() or "nan" for r in rows]
    try:
        values = np.array(cells).astype(float)
    except ValueError:
        values = np.array([_float(cell) for cell in cells])
    values[~np.isfinite(values)] = np.nan
    return values


_V2_COLUMNS = {
    "ifeval": "evaluations_ifeval_normalized_score",
    "bbh": "evaluations_bbh_normalized_score",
    "math_lvl5": "evaluations_math_normalized_score",
    "gpqa": "evaluations_gpqa_normalized_score",
    "musr": "evaluations_musr_normalized_score",
    "mmlu_pro": "evaluations_mmlu_pro_normalized_score",
    "params_b": "metadata_params_billions",
}
# v2's model_type tells the post-training stage for two of its categories; the others are unknown.
_V2_STAGE = {"pretrained": "base", "chatmodels": "instruct"}


def load_snapshot(root: Path | None = None) -> Snapshot:
    """The shipped leaderboards and seed-model metadata as one feature table (cached, see below).

    Parsing the two leaderboard CSVs costs ~0.25 s, most of ``rank``'s own time, so the parsed table
    is kept as ``snapshot-<key>.npz`` in ``$BASEPICK_CACHE_DIR`` (default ``$XDG_CACHE_HOME/basepick``
    or ``~/.cache/basepick``). The key is each source's path, size and modification time, as Python
    keys its bytecode cache (hashing the 5 MB of sources cost 14 ms of every ``rank``): an edited
    source changes the key. A damaged cache (truncated, altered: the zip's CRCs tell) is rebuilt; an
    unwritable one is ignored.
    """
    bench = (root or data_root()) / "benchmarks"
    sources = [bench / name for name in (V2_FILE, V1_FILE, MODELS_FILE)]
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    for path in sources:
        stat = path.stat()
        digest.update(f"\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    cache = cache_dir() / f"snapshot-{digest.hexdigest()[:24]}.npz"
    snapshot = _read_cache(cache)
    if snapshot is None:
        snapshot = _parse_snapshot(bench)
        _write_cache(cache, snapshot)
    return snapshot


def _read_cache(path: Path) -> Snapshot | None:
    """The cached table, or None when there is none or it is damaged (truncated, altered, unreadable):
    then the sources are parsed again and the cache rewritten."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, table, in_v2 = z["ids"].tolist(), z["table"], z["in_v2"]
    except Exception:  # noqa: BLE001 (numpy and zipfile raise many kinds for a damaged file; any means: rebuild)
        return None
    n = len(ids)
    if in_v2.shape != (n,) or in_v2.dtype != bool or table.shape != (len(F.ALL_FEATURES), n) or table.dtype.kind != "f":
        return None
    columns = dict(zip(F.ALL_FEATURES, table))
    return Snapshot(ids=ids, columns=columns, v2_ids=[ids[i] for i in np.flatnonzero(in_v2)])


_CACHE_FORMAT = "snapshot-v3"  # v2: sizes stated in names replace quantised counts; v3: one table, stat key


def cache_dir() -> Path:
    """basepick's cache directory: $BASEPICK_CACHE_DIR, else $XDG_CACHE_HOME/basepick or ~/.cache/basepick."""
    if os.environ.get("BASEPICK_CACHE_DIR"):
        return Path(os.environ["BASEPICK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "basepick"


def _write_cache(path: Path, snapshot: Snapshot) -> None:
    in_v2 = np.zeros(len(snapshot.ids), dtype=bool)
    in_v2[[snapshot.index[m] for m in snapshot.v2_ids]] = True
    table = np.stack([snapshot.columns[name] for name in F.ALL_FEATURES])  # one zip member: 3 reads, not 19
    try:
        with atomic_file(path, "wb") as f:
            np.savez(f, ids=np.array(snapshot.ids), in_v2=in_v2, table=table)
    except OSError:
        pass  # a read-only cache is fine: the next run parses again


def _parse_snapshot(bench: Path) -> Snapshot:
    c2, v2 = _best_rows(bench / V2_FILE, "model_name", _v2_preference)
    c1, v1 = _best_rows(bench / V1_FILE, "fullname", _v1_preference)
    meta = load_model_metadata(bench / MODELS_FILE)
    ids = sorted(set(v2) | set(v1) | set(meta))
    index = {model_id: i for i, model_id in enumerate(ids)}
    columns = {name: np.full(len(ids), np.nan) for name in F.SPECS}

    rows2 = list(v2.values())
    at2 = np.array([index[m] for m in v2])
    for name, source in _V2_COLUMNS.items():
        columns[name][at2] = _numbers(rows2, c2[source])
    stages = [_V2_STAGE.get(r[c2["model_type"]]) for r in rows2]
    columns["post_training"][at2] = [F.POST_TRAINING_STAGES[s] if s else np.nan for s in stages]

    rows1 = list(v1.values())
    at1 = np.array([index[m] for m in v1])
    for name in F.V1_SCORES:
        columns[name][at1] = _numbers(rows1, c1[name])
    params = columns["params_b"]
    params[params <= 0] = np.nan  # the leaderboards write 0 for "unknown"
    stated = {i: F.stated_size(model_id) for i, model_id in zip(at2, v2)}  # sizes v2 names state (SOURCES.md)
    for i, size in stated.items():
        if F.contradicts_name(ids[i], params[i]):  # a quantised export's packed count
            params[i] = size
    v1_params = _numbers(rows1, c1["params_b"])
    v1_params[v1_params <= 0] = np.nan
    missing = np.isnan(params[at1])
    params[at1[missing]] = v1_params[missing]
    for i, size in stated.items():
        if math.isnan(params[i]):  # no leaderboard records a size: the name's
            params[i] = size

    for model_id, m in meta.items():  # the study's metadata is authoritative
        for name in ("params_b", "pretrain_tokens_t", "post_training"):
            columns[name][index[model_id]] = m[name]
    F.add_derived(columns)
    return Snapshot(ids=ids, columns=columns, v2_ids=sorted(v2))


def load_model_metadata(path: Path | None = None) -> dict[str, dict]:
    """seed_paper_models.csv → {model_id: {lineage, publisher, post_training, params_b, ...}}."""
    path = path or benchmarks_dir() / MODELS_FILE
    header, rows = read_csv(path)
    out: dict[str, dict] = {}
    for row in (dict(zip(header, r)) for r in rows):
        out[row["model_id"]] = {
            "publisher": row["publisher"],
            "lineage": row["lineage"],
            "release": row["release"],
            "params_b": _float(row["params_b"]),
            "pretrain_tokens_t": _float(row["pretrain_tokens_t"]),
            "post_training": F.POST_TRAINING_STAGES.get(row["post_training"], math.nan),
        }
    return out
