"""`basepick train` on bad input: one `Error:` line, exit 2, no RUN_DIR and no RUN_DIR.partial left behind."""

import json
import shutil
import tempfile
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
import builders as B  # noqa: E402

from tests.conftest import assert_one_line_error  # noqa: E402


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return B.workspace(tmp_path_factory)


def _train(run, ws, out, *extra, base=None, data=None, eval_data=None, recipe="bradley_terry"):
    return run("train", base or ws / "base", "--data", data or ws / "train.jsonl", "--eval-data",
               eval_data or ws / "val.jsonl", "--recipe", recipe, "--out", out, "--batch-size", "16",
               "--max-length", "64", "--dtype", "float32", "--max-steps", "1", *extra)


def _no_run_dir(tmp_path):
    return not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_base_dir_without_weights(run, ws, tmp_path):
    base = tmp_path / "noweights"
    shutil.copytree(ws / "base", base)
    (base / "model.safetensors").unlink()
    result = _train(run, ws, tmp_path / "run", base=base)
    assert_one_line_error(result, "safetensors")
    assert _no_run_dir(tmp_path)


def test_weights_of_the_wrong_shape(run, ws, tmp_path):
    base = tmp_path / "shapes"
    shutil.copytree(ws / "base", base)
    config = json.loads((base / "config.json").read_text())
    config["intermediate_size"] = 48  # the tensors hold 64
    (base / "config.json").write_text(json.dumps(config))
    result = _train(run, ws, tmp_path / "run", base=base)
    assert_one_line_error(result, "wrong shape")
    assert _no_run_dir(tmp_path)


def test_empty_data(run, ws, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = _train(run, ws, tmp_path / "run", data=empty)
    assert_one_line_error(result, "no rows")
    assert _no_run_dir(tmp_path)


def test_regression_rows_missing_an_attribute(run, ws, tmp_path):
    rows = B.regression_rows(4, 0)
    del rows[2]["verbosity"]
    data = B.write_jsonl(tmp_path / "hs2.jsonl", rows)
    result = _train(run, ws, tmp_path / "run", data=data, recipe="regression")
    assert_one_line_error(result, "verbosity", ":3")
    assert _no_run_dir(tmp_path)


def test_unknown_recipe(run, ws, tmp_path):
    result = _train(run, ws, tmp_path / "run", recipe="dpo")
    assert_one_line_error(result, "dpo")
    assert _no_run_dir(tmp_path)


def test_labels_out_needs_a_complete_rewardbench_file(run, ws, tmp_path):
    partial_rb = B.write_jsonl(tmp_path / "rb.jsonl", [r for r in B.rewardbench_rows(2, 0) if r["subset"] != "donotanswer"])
    result = _train(run, ws, tmp_path / "run", "--rewardbench", partial_rb, "--labels-out", tmp_path / "l.csv",
                    "--model-id", "a/b")
    assert_one_line_error(result, "Safety")
    assert _no_run_dir(tmp_path) and not (tmp_path / "l.csv").exists()
    result = _train(run, ws, tmp_path / "run", "--labels-out", tmp_path / "l.csv")
    assert_one_line_error(result, "--model-id")


def test_existing_out_and_lr_conflicts(run, ws, tmp_path):
    (tmp_path / "run").mkdir()
    assert_one_line_error(_train(run, ws, tmp_path / "run"), "already exists")
    assert_one_line_error(_train(run, ws, tmp_path / "other", "--lr", "1e-5", "--lr-sweep"), "--lr-sweep")
    assert_one_line_error(_train(run, ws, tmp_path / "other", "--resume"), "nothing to resume")
    assert not (tmp_path / "other").exists()


def test_truncate_left_keeps_over_length_examples(run, ws, tmp_path):
    result = _train(run, ws, tmp_path / "run", "--max-length", "32", "--truncate", "left", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["train_filtered"] == 0 and data["train_truncated"] > 0 and data["train"] == 192


@pytest.mark.parametrize("where", ["file", "proc", "readonly"])
@pytest.mark.parametrize("command", ["train", "score", "probe"])
def test_an_unwritable_out_is_one_line_before_any_work(ws, tmp_path, run, monkeypatch, where, command):
    """--out under a file, under /proc or in a read-only folder: one Error line, exit 2, nothing written."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = {"file": blocker / "sub" / "out", "proc": Path("/proc/basepick-test/out"), "readonly": tmp_path / "ro" / "out"}[where]
    if where == "readonly":  # root may write anywhere: simulate the refusal of a read-only folder
        (tmp_path / "ro").mkdir()
        real = tempfile.mkdtemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == tmp_path / "ro":
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    model = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
    args = {"train": ["train", ws / "base", "--data", ws / "train.jsonl", "--eval-data", ws / "val.jsonl",
                      "--recipe", "bradley_terry", "--out", out],
            "score": ["score", model, "--data", ws / "rb.jsonl", "--out", out],
            "probe": ["probe", model, "--out", out]}[command]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run(*args)
    assert_one_line_error(result, f"cannot create {out}")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
