"""`basepick score` through click: exit codes, stdout results, one-line errors."""

import json
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402

import cli  # noqa: E402

MODEL = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
ROWS = [
    {"id": "a", "subset": "alpacaeval-easy", "prompt": "Say hi", "chosen": "Hi there!", "rejected": "No."},
    {"id": "b", "subset": "hep-python", "prompt": "Add a and b", "chosen": "return a + b", "rejected": "return a - b"},
]


def _invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def _pairs(tmp_path: Path, lines) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_score_writes_out_file_and_prints_json_summary(tmp_path):
    out = tmp_path / "scores.jsonl"
    result = _invoke("score", MODEL, "--data", _pairs(tmp_path, ROWS), "--out", out, "--batch-size", 1,
                     "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["schema_version"] == 1 and summary["items"] == 2 and summary["schema"] == "rewardbench"
    assert [r["id"] for r in rows] == ["a", "b"] and all("chosen_score" in r for r in rows)
    assert summary["accuracy"] == sum(r["chosen_score"] > r["rejected_score"] for r in rows) / 2
    assert set(summary["rewardbench"]["sections"]) == {"Chat", "Reasoning"}


def test_score_without_out_streams_rows_to_stdout(tmp_path):
    result = _invoke("score", MODEL, "--data", _pairs(tmp_path, ROWS))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert "accuracy" in result.stderr and "RewardBench v1 (partial" in result.stderr


@pytest.mark.parametrize(
    ("model", "lines", "fragment"),
    [
        (MODEL, [ROWS[0], "{broken"], "pairs.jsonl:2: not valid JSON"),
        (MODEL, [{"chosen": "x"}], "pairs.jsonl:1: unknown row schema with columns ['chosen']"),
        (None, [ROWS[0]], "not a model directory"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(tmp_path, model, lines, fragment):
    result = _invoke("score", model or tmp_path, "--data", _pairs(tmp_path, lines))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and fragment in result.stderr and len(result.stderr.splitlines()) == 1


def test_weights_that_do_not_match_the_outputs_are_one_line(tmp_path):
    result = _invoke("score", MODEL, "--data", _pairs(tmp_path, ROWS), "--weights", "1,2")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: --weights has 2 values but {MODEL} has 1 reward output(s)"]


def test_a_real_process_writes_one_error_line_and_no_third_party_banner(tmp_path):
    """In a fresh process, as a user runs it: without torch (CI's first phase) transformers would print its
    "PyTorch was not found" banner on import; nothing but basepick's notes and one Error line may reach stderr."""
    import subprocess
    import sys

    rows = [{**ROWS[0], "id": "a"}, {**ROWS[0], "id": "b", "subset": "alpaca-easy"}]  # fails after scoring
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "score", str(MODEL), "--data",
                           str(_pairs(tmp_path, rows))], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("note: ")]
    assert lines == ["Error: " + lines[0].removeprefix("Error: ")] and "'alpaca-easy'" in lines[0], proc.stderr


def test_a_missing_dependency_is_named_with_the_install_command(monkeypatch):
    import importlib.util

    import trainer_jax
    from predictor.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jinja2" else real(name, *a))
    with pytest.raises(MissingExtraError) as info:
        trainer_jax.require_train_extra()
    assert str(info.value) == "this command needs the 'train' extra (jinja2 is not installed): pip install 'basepick[train]'"
