"""Atomic file writes: a temporary file beside the destination, fsync, then ``os.replace``.

A reader sees the old file or the new one, never a half-written one; a failure (or a kill) leaves
the destination as it was and removes the temporary file. The file gets the permissions a plain
``open`` would give it (0644 under umask 022), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, newline: str | None = None) -> Iterator[IO]:
    """``with atomic_file(path) as f: f.write(...)`` — text (UTF-8) or binary (``mode="wb"``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if "b" in mode else newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path, newline="") as f:
        f.write(text)


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it; it is restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: str | os.PathLike) -> Path:
    """DataError, before any work, when ``path`` (a file or folder to create or replace) cannot be written:
    the nearest existing folder above it is a file, read-only, or a pseudo-filesystem such as /proc."""
    from predictor.errors import DataError

    path = Path(path)
    folder = path.absolute().parent
    while not folder.exists():  # the nearest folder that exists is where the first new one is made
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"cannot create {path}: {folder} is a file, not a folder")
    try:  # os.access says yes to root everywhere; only trying tells (read-only mounts, /proc)
        os.rmdir(tempfile.mkdtemp(prefix=".basepick-probe-", dir=folder))
    except OSError as exc:
        raise DataError(f"cannot create {path}: {folder} is not writable ({exc.strerror or exc})") from None
    return path
