"""Every file a user can point a command at, in every bad shape, is one `Error:` line and exit 2 —
never a traceback, never another code — and nothing is written (issue 16: fix the class, not the
instances). Outputs that cannot be written are refused before any work."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES, REPO, assert_one_line_error

CANDIDATES = EXAMPLES / "candidates.csv"
HARNESS = REPO / "tests" / "fixtures" / "harness" / "pythia-1b"

# (name, args with "{}" where the bad path goes); the trainer's validate is included (it needs no model)
INPUTS = [
    ("rank", ["rank", "{}"]),
    ("rank --predictor", ["rank", CANDIDATES, "--predictor", "{}"]),
    ("plan", ["plan", "{}", "--budget", "1"]),
    ("plan --labels", ["plan", CANDIDATES, "--budget", "1", "--labels", "{}"]),
    ("plan --predictor", ["plan", CANDIDATES, "--budget", "1", "--predictor", "{}"]),
    ("fit --labels", ["fit", "--labels", "{}", "--out", "OUT"]),
    ("fit --features", ["fit", "--features", "{}", "--out", "OUT"]),
    ("inspect", ["inspect", "{}"]),
    ("evaluate --labels", ["evaluate", "--labels", "{}"]),
    ("evaluate --features", ["evaluate", "--features", "{}"]),
    ("check", ["check", "{}"]),
    ("check --against", ["check", CANDIDATES, "--against", "{}"]),
    ("ingest", ["ingest", "{}", "--out", "OUT"]),
    ("validate", ["validate", "{}"]),
    ("validate --predictor", ["validate", REPO / "data" / "benchmarks" / "seed_paper_rewardbench.csv", "--predictor", "{}"]),
]


def _bad_inputs(tmp_path):
    (tmp_path / "dir").mkdir()
    files = {
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "text": b"hello world\nthis is not a table\n",
        "json": b'{"results": 5}',
        "utf16-garbage": b"\xff\xfe" + "x,y\n\ud800".encode("utf-16-le", "surrogatepass"),
        "huge-number": b"model_id,ifeval,params_b\nacme/x,1e999,7\n",
        "header-only": b"model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n",
    }
    paths = {"missing": tmp_path / "nope.csv", "directory": tmp_path / "dir", "device": "/dev/zero"}
    for name, data in files.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.mark.parametrize("name, template", INPUTS, ids=[n for n, _ in INPUTS])
def test_every_input_in_every_bad_shape_is_one_line(run, tmp_path, name, template):
    out = tmp_path / "out"
    for case, path in _bad_inputs(tmp_path).items():
        if name == "inspect" and case == "directory":
            continue  # an empty folder: "not a basepick predictor" is tested below
        args = [str(path) if a == "{}" else (str(out / case) if a == "OUT" else a) for a in template]
        result = run(*args)
        if name.startswith("check") and case == "huge-number":  # readable, one invalid value: the report says so
            want = 1 if name == "check" else 0  # the gate fails for the new dump; --against's is a note
            assert result.exit_code == want and "invalid value" in result.stderr, (case, result.output[-400:])
            continue
        assert result.exit_code == 2, (case, result.exit_code, result.output[-400:])
        assert_one_line_error(result)
        assert not out.exists(), (case, "something was written")


def test_an_empty_folder_is_not_a_predictor(run, tmp_path):
    assert_one_line_error(run("inspect", tmp_path), "not a basepick predictor")


OUTPUTS = [
    ("rank --plot", ["rank", CANDIDATES, "--plot", "{}"]),
    ("plan --emit", ["plan", CANDIDATES, "--budget", "1", "--emit", "{}"]),
    ("fit --out", ["fit", "--out", "{}"]),
    ("ingest --out", ["ingest", HARNESS, "--out", "{}"]),
]


@pytest.mark.parametrize("name, template", OUTPUTS, ids=[n for n, _ in OUTPUTS])
def test_outputs_that_cannot_be_written_are_refused(run, tmp_path, name, template):
    pytest.importorskip("matplotlib") if "--plot" in template else None
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "dir").mkdir()
    cases = {"under a file": blocker / "x", "proc": "/proc/basepick-test/x"}
    if name != "fit --out":
        cases["a directory"] = tmp_path / "dir"
    for case, path in cases.items():
        result = run(*[str(path) if a == "{}" else a for a in template])
        assert result.exit_code == 2, (case, result.exit_code, result.output[-400:])
        assert_one_line_error(result)
