"""Shared test helpers: run the CLI in-process and read its stdout/stderr apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def run():
    """run(*args) → click Result; stdout and stderr are kept apart (click >= 8.2)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli.main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def assert_one_line_error(result, *fragments: str, code: int = 2) -> None:
    """A bad input: the given exit code, one `Error:` line on stderr naming the problem, no stdout."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""


def rank_json(run, *args: str) -> dict:
    result = run("rank", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pythia_v2_and_v1_runs(folder: Path) -> Path:
    """``folder`` with the leaderboard's pythia-1b v2 run in a/ and the v1 fixture run in b/, renamed to
    pythia-1b: one model's results from two lm-eval versions, for different benchmarks."""
    import shutil

    harness = Path(__file__).parent / "fixtures" / "harness"
    shutil.copytree(harness / "pythia-1b", folder / "a")
    shutil.copytree(harness / "v1-run", folder / "b")
    v1 = next((folder / "b").rglob("results_*.json"))
    doc = json.loads(v1.read_text(encoding="utf-8"))
    doc["config"]["model_args"] = {"pretrained": "EleutherAI/pythia-1b"}
    v1.write_text(json.dumps(doc), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/basepick."""
    import os

    os.environ["BASEPICK_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
