"""A wheel carries the shipped data and works from a foreign directory, without the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"wheel build failed: {build.stderr[-2000:]}")
    (path,) = out.glob("basepick-*.whl")
    return path


def test_wheel_contains_the_shipped_data_and_predictor(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "cli.py",
        "predictor/_data/benchmarks/open_llm_leaderboard_v2.csv",
        "predictor/_data/benchmarks/open_llm_leaderboard_v1.csv",
        "predictor/_data/benchmarks/seed_paper_rewardbench.csv",
        "predictor/_data/benchmarks/seed_paper_models.csv",
        "predictor/_data/benchmarks/SOURCES.md",
        "predictor/_data/predictor/metadata.json",
        "predictor/_data/predictor/models/README.txt",
        "predictor/_data/probe/corpus.jsonl.gz",
        "predictor/_data/probe/LICENSES.txt",
        "trainer_jax/models/decoder.py",
        "trainer_jax/data/batching.py",
        "trainer_jax/evals/score.py",
        "trainer_jax/train/run.py",
    ):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_ranks_from_a_foreign_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "BASEPICK_CACHE_DIR": str(tmp_path / "cache")}
    code = (
        "import sys, cli, predictor.data.shipped as d; "
        "assert d.data_root() == __import__('pathlib').Path(sys.argv[1]) / 'predictor' / '_data', d.data_root(); "
        "sys.argv = ['basepick', 'rank', sys.argv[2], '--format', 'json', '--top', '3']; cli.main()"
    )
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    result = subprocess.run([sys.executable, "-c", code, str(target), str(REPO / "examples" / "candidates.csv")],
                            cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [c["rank"] for c in json.loads(result.stdout)["candidates"]] == [1, 2, 3]


@pytest.mark.parametrize("command", [["rank"], ["plan", "--budget", "3"]])
def test_rank_and_plan_never_import_heavy_modules(tmp_path, command):
    code = (
        "import sys, cli\n"
        f"sys.argv = ['basepick', {command[0]!r}, sys.argv[1], *{command[1:]!r}, '--format', 'json']\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('jax', 'flax', 'optax', 'transformers', 'torch', 'trainer_jax', 'matplotlib') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)\nassert not heavy, heavy\n"
    )
    env = {**os.environ, "BASEPICK_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "examples" / "candidates.csv")],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
