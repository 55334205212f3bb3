"""Predictor artifacts: LightGBM text models + metadata.json, written atomically. No pickle.

Layout of an artifact directory::

    metadata.json                      schema, versions, seed, data sha256, per-model state: the
                                       chosen ranking method (predictor.models.methods) and its calibration
    models/<recipe>__<target>__<k>.txt one LightGBM text model per ensemble member, where the
                                       LightGBM predictor was chosen (a linear method lives in
                                       metadata.json alone)
    models/README.txt                  says the above (the folder exists even when it holds no model)

A directory is written under a temporary name beside its destination and renamed into place, so a
killed ``fit`` never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from predictor.data.atomic import check_writable, umask
from predictor.errors import ArtifactError
from predictor.models.methods import PREDICTOR, LinearMethod, method_name
from predictor.models.model import RewardPredictor

SCHEMA_VERSION = 2  # 2: every model file's size and sha256 in metadata.json ("checksums")
METADATA = "metadata.json"
MODELS_README = (
    "LightGBM text models of the (recipe, target) pairs whose chosen ranking method is the LightGBM predictor,\n"
    "one per ensemble member; ../metadata.json lists them per pair and holds the linear methods whole.\n"
)


@dataclass
class Bundle:
    """All models of one artifact: (recipe, target) → the chosen ranking method (a RewardPredictor or
    a methods.LinearMethod), plus the metadata they came with.

    A loaded bundle parses a model's LightGBM files only when ``get`` first asks for it: ``rank``
    needs one of the ten, and parsing all of them would dominate its run time.
    """

    models: dict[tuple[str, str], RewardPredictor | LinearMethod]
    metadata: dict
    source: Path | None = None  # artifact directory for models not parsed yet

    def keys(self) -> list[tuple[str, str]]:
        return sorted(set(self.models) | {tuple(k.split("/", 1)) for k in self.metadata.get("models", {})})

    def get(self, recipe: str, target: str) -> RewardPredictor | LinearMethod:
        key = (recipe, target)
        if key not in self.models:
            entry = self.metadata.get("models", {}).get(f"{recipe}/{target}")
            if entry is None or self.source is None:
                have = ", ".join(f"{r}/{t}" for r, t in self.keys())
                raise ArtifactError(f"this predictor has no model for recipe {recipe!r}, target {target!r} (has: {have}); "
                                    "choose one of those, or refit it with labels of that recipe")
            self.models[key] = _load_model(self.source, f"{recipe}/{target}", entry, self.metadata["checksums"])
        return self.models[key]

    @property
    def recipes(self) -> list[str]:
        return sorted({r for r, _ in self.models})


def _model_file(recipe: str, target: str, k: int) -> str:
    return f"models/{recipe}__{target}__{k}.txt"


def check_destination(out_dir: str | Path) -> Path:
    """Refuse, before any work, a destination that is not a basepick predictor or cannot be written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / METADATA).is_file():
        raise ArtifactError(f"{out_dir} exists and is not a basepick predictor; choose a new --out directory")
    return check_writable(out_dir)


def save(bundle: Bundle, out_dir: str | Path, *, parent: str | None = None) -> Path:
    """Write ``bundle`` to ``out_dir`` atomically; an existing artifact there is replaced.

    The artifact's ``version`` is ``content_version`` of its metadata: a digest of what it was fitted
    from, never of the fitted numbers (whose last bits depend on the CPU's BLAS kernels). ``parent`` is
    the version of the artifact it replaces at ``out_dir``, else the given ``parent``; a refit that
    changes nothing keeps the replaced artifact's parent, and a fit identical to ``parent`` has none.
    """
    out_dir = check_destination(out_dir)
    previous = previous_metadata(out_dir)
    try:
        return _write(bundle, out_dir, previous.get("version", parent), previous)
    except OSError as exc:
        raise ArtifactError(f"cannot write {out_dir}: {exc.strerror or exc}") from None


def previous_metadata(out_dir: Path) -> dict:
    """The metadata of an artifact that is being replaced or built on (for its version and parent), read
    leniently: an artifact of an older schema, or a damaged one, can still be replaced."""
    try:
        metadata = json.loads((out_dir / METADATA).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _write(bundle: Bundle, out_dir: Path, parent: str | None, previous: dict) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private (0700); an artifact follows the umask
        (tmp / "models").mkdir()
        (tmp / "models" / "README.txt").write_text(MODELS_README, encoding="utf-8")
        entries, checksums = {}, {}
        for (recipe, target), predictor in sorted(bundle.models.items()):
            files = []
            for k, text in enumerate(predictor.model_strings()):
                name = _model_file(recipe, target, k)
                data = text.encode("utf-8")
                (tmp / name).write_bytes(data)
                files.append(name)
                checksums[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            entries[f"{recipe}/{target}"] = {**predictor.state(), "method": method_name(predictor), "files": files}
        version = content_version(bundle.metadata, sorted(entries))
        if parent == version:  # nothing changed: keep what it was built on (none if identical to the given parent)
            parent = previous.get("parent") if previous.get("version") == version else None
        metadata = {
            **bundle.metadata,
            "schema_version": SCHEMA_VERSION,
            "version": version,
            "parent": parent,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "models": entries,
            "checksums": checksums,  # model file → its size and sha256, checked before LightGBM reads it
        }
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


IDENTITY = ("basepick_version", "seed", "data", "fit")  # the metadata a version is a digest of


def content_version(metadata: dict, keys: list[str]) -> str:
    """12 hex digits identifying what an artifact was fitted from: the basepick version, the seed, the
    sha256 of every input table (labels, features, snapshot), the fit configuration and the (recipe,
    target) pairs fitted. Equal inputs give equal versions on any machine; the fitted numbers do not
    enter, because their last bits differ between BLAS kernels (OPENBLAS_CORETYPE changes them)."""
    identity = {**{k: metadata.get(k) for k in IDENTITY}, "models": keys}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an old ``dst`` is moved aside first and removed only afterwards."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load(path: str | Path) -> Bundle:
    """Read an artifact directory; a missing, partial, damaged or incompatible one raises ArtifactError.

    Every model file's size is checked here and its sha256 when it is read (``Bundle.get``), against
    what ``fit`` recorded, so LightGBM never parses a truncated or altered file (it would abort the
    process in C++).
    """
    path = Path(path)
    meta_path = path / METADATA
    if not meta_path.is_file():
        raise ArtifactError(f"{path}: not a basepick predictor (no {METADATA}); create one with `basepick fit`")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: unreadable ({exc}); refit with `basepick fit`") from None
    schema = metadata.get("schema_version") if isinstance(metadata, dict) else None
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise ArtifactError(f"{path}: written by a newer basepick (artifact schema {schema}; this one reads "
                            f"{SCHEMA_VERSION}); upgrade basepick: pip install --upgrade basepick")
    if schema != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: written by an older basepick (artifact schema {schema or '?'}; this one reads "
                            f"{SCHEMA_VERSION}); refit it with `basepick fit --out {path}`")
    entries = metadata.get("models")
    checksums = metadata.get("checksums")
    if not isinstance(entries, dict) or not entries or not isinstance(checksums, dict):
        raise ArtifactError(f"{path}: the artifact holds no models; refit with `basepick fit`")
    for key, entry in entries.items():
        files = entry.get("files") if isinstance(entry, dict) else None
        needs_files = isinstance(entry, dict) and entry.get("method", PREDICTOR) == PREDICTOR  # linear: no files
        if not isinstance(files, list) or (needs_files and not files):
            raise ArtifactError(f"{path}: the metadata of {key} lists no model files; the artifact is damaged, refit it")
        for name in files:
            _check_size(path, str(name), checksums.get(name))
    return Bundle(models={}, metadata=metadata, source=path)


def _check_size(path: Path, name: str, expected) -> None:
    if not isinstance(expected, dict) or not isinstance(expected.get("bytes"), int):
        raise ArtifactError(f"{path}: {METADATA} records no checksum for {name}; the artifact is damaged, refit it")
    try:
        size = (path / name).stat().st_size
    except OSError:
        raise ArtifactError(f"{path / name}: missing; the artifact is partial, refit it with `basepick fit`") from None
    if size != expected["bytes"]:
        raise ArtifactError(f"{path / name}: {size} bytes where {expected['bytes']} were written; the file is "
                            "truncated or altered, refit the artifact with `basepick fit`")


def _load_model(path: Path, key: str, entry: dict, checksums: dict) -> RewardPredictor | LinearMethod:
    if entry.get("method", PREDICTOR) != PREDICTOR:
        return LinearMethod.from_state(entry)
    strings = []
    for name in entry["files"]:
        try:
            data = (path / name).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path / name}: unreadable ({exc.strerror or exc}); refit the artifact") from None
        if hashlib.sha256(data).hexdigest() != checksums[name]["sha256"]:
            raise ArtifactError(f"{path / name}: its sha256 differs from the one written at fit time; the file is "
                                "damaged or altered, refit the artifact with `basepick fit`")
        strings.append(data.decode("utf-8"))
    return RewardPredictor.from_state(entry, strings)


def summary(path: str | Path) -> dict:
    """What ``basepick inspect`` shows of one artifact: identity, provenance, fit-time quality."""
    bundle = load(path)
    meta = bundle.metadata
    models = {}
    for key, entry in sorted(meta["models"].items()):
        cal = entry.get("calibration") or {}
        models[key] = {
            "method": entry.get("method", PREDICTOR),
            "features": entry["config"]["features"] if "config" in entry else entry["offset"]["names"],
            "members": max(len(entry["files"]), 1),
            "labelled_models": len(cal.get("ids", [])),
            "lineage_cv": cal.get("lineage_cv"),
            "mean_score_spearman": cal.get("mean_score_spearman"),
            "choice": cal.get("choice"),
        }
    return {
        "path": str(Path(path)),
        "version": meta.get("version"),
        "parent": meta.get("parent"),
        "created": meta.get("created"),
        "basepick_version": meta.get("basepick_version"),
        "versions": meta.get("versions"),
        "seed": meta.get("seed"),
        "data": meta.get("data"),
        "models": models,
    }
