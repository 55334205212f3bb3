"""Outputs (issue 13, items 3 and 4): unwritable destinations are one `Error:` line before any work, too
little data to hold a lineage out is said plainly, and written files follow the user's umask."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from predictor.data.atomic import write_text
from predictor.data.shipped import benchmarks_dir
from predictor.models import artifact
from tests.conftest import EXAMPLES, assert_one_line_error, write

PYTHIA = Path(__file__).parent / "fixtures" / "harness" / "pythia-1b"
SEED = benchmarks_dir() / "seed_paper_rewardbench.csv"


@pytest.fixture
def no_fitting(monkeypatch):
    """A destination problem must be found before the (slow) fit starts."""
    import predictor.jobs.fit

    def fail(*args, **kwargs):
        raise AssertionError("fit started although --out cannot be written")

    monkeypatch.setattr(predictor.jobs.fit, "fit_bundle", fail)


def test_fit_out_under_a_file(run, tmp_path, no_fitting):
    blocker = write(tmp_path / "file", "x")
    assert_one_line_error(run("fit", "--out", blocker / "sub" / "p"), "cannot create", "is a file, not a folder")
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_fit_out_under_proc(run, no_fitting):
    assert_one_line_error(run("fit", "--out", "/proc/basepick-test/p"), "cannot create /proc/basepick-test/p",
                          "not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; see the simulated test below")
def test_fit_out_in_a_read_only_folder(run, tmp_path, no_fitting):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert_one_line_error(run("fit", "--out", folder / "p"), "not writable", "Permission denied")
    finally:
        folder.chmod(0o755)


def test_fit_out_in_a_read_only_folder_simulated(run, tmp_path, monkeypatch, no_fitting):
    """What the OS answers a non-root user for a 0555 folder (or a read-only mount), as root cannot see it."""
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    assert_one_line_error(run("fit", "--out", tmp_path / "p"), "not writable", "Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_late_is_one_line_and_leaves_the_old_artifact(run, tmp_path, monkeypatch):
    import shutil

    from predictor.data.shipped import shipped_predictor_dir

    out = tmp_path / "p"
    shutil.copytree(shipped_predictor_dir(), out)
    before = (out / "metadata.json").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifact, "_replace_dir", full)
    assert_one_line_error(run("fit", "--out", out), "cannot write", "No space left on device")
    assert (out / "metadata.json").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["p"]


@pytest.mark.parametrize("where, fragments", [
    (lambda tmp: write(tmp / "file", "x") / "f.csv", ["is not a folder"]),
    (lambda tmp: tmp / "missing" / "f.csv", ["does not exist"]),
    (lambda tmp: Path("/proc/f.csv"), ["cannot write"]),
])
def test_ingest_out_that_cannot_be_written(run, tmp_path, where, fragments):
    assert_one_line_error(run("ingest", PYTHIA, "--out", where(tmp_path)), *fragments)


def labels_of(tmp_path, keep, first: int | None = None) -> Path:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    rows = [r for r in lines[1:] if keep(r)][:first]
    return write(tmp_path / "l.csv", "\n".join([lines[0], *rows]) + "\n")


def regression(r: str) -> bool:
    return ",regression," in r


@pytest.mark.parametrize("keep, first, split, fragments", [
    (lambda r: regression(r) and r.startswith("Qwen/"), None, "lineage", ["all 11 labelled models are of one lineage (qwen)"]),
    (regression, 5, "lineage", ["predicts only 0 of 5", "from 0 lineage(s)", "at least 5 from 2 lineages"]),
    (regression, 12, "temporal", ["the temporal split predicts only 3 of 12"]),
    (regression, 7, "random", ["the random split predicts only 0 of 7"]),
])
def test_evaluate_with_too_few_rows_or_lineages(run, tmp_path, keep, first, split, fragments):
    labels = labels_of(tmp_path, keep, first)
    assert_one_line_error(run("evaluate", "--labels", labels, "--split", split), *fragments)


def test_fit_needs_two_lineages_for_its_calibration(run, tmp_path):
    labels = labels_of(tmp_path, lambda r: regression(r) and r.startswith("Qwen/"))
    assert_one_line_error(run("fit", "--no-shipped-labels", "--labels", labels, "--out", tmp_path / "p"),
                          "fit (regression)", "one lineage")
    assert not (tmp_path / "p").exists()


# Permissions: what a plain `open` and `mkdir` would give, under whatever umask the user has


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask


def test_artifact_files_and_folders_follow_the_umask(tmp_path, umask):
    from predictor.data.shipped import shipped_predictor_dir

    artifact.save(artifact.load(shipped_predictor_dir()).__class__(
        models={("regression", "score"): artifact.load(shipped_predictor_dir()).get("regression", "score")},
        metadata={}), tmp_path / "p")
    got = modes(tmp_path / "p")
    for name, mode in got.items():
        want = 0o777 & ~umask if (tmp_path / "p" / name).is_dir() else 0o666 & ~umask
        assert mode == want, (name, oct(mode), oct(want))
    if umask == 0o022:
        assert got["."] == 0o755 and got["models"] == 0o755 and got["metadata.json"] == 0o644


def test_ingest_output_and_snapshot_cache_follow_the_umask(run, tmp_path, monkeypatch, umask):
    assert run("ingest", PYTHIA, "--out", tmp_path / "f.csv").exit_code == 0
    assert stat.S_IMODE((tmp_path / "f.csv").stat().st_mode) == 0o666 & ~umask
    monkeypatch.setenv("BASEPICK_CACHE_DIR", str(tmp_path / "cache"))
    assert run("rank", EXAMPLES / "candidates.csv", "--top", "1", "--format", "json").exit_code == 0
    (cache,) = (tmp_path / "cache").glob("snapshot-*.npz")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o666 & ~umask


def test_fit_from_the_cli_writes_0644_and_0755(run, tmp_path):
    old = os.umask(0o022)
    try:
        labels = labels_of(tmp_path, regression)
        assert run("fit", "--no-shipped-labels", "--labels", labels, "--out", tmp_path / "p").exit_code == 0
    finally:
        os.umask(old)
    got = modes(tmp_path / "p")
    assert {m for n, m in got.items() if (tmp_path / "p" / n).is_dir()} == {0o755}
    assert {m for n, m in got.items() if (tmp_path / "p" / n).is_file()} == {0o644}
