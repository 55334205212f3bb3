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


def test_truncated_safetensors_is_one_line_naming_the_file(run, ws, tmp_path):
    base = tmp_path / "cut"
    shutil.copytree(ws / "base", base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = _train(run, ws, tmp_path / "run", base=base)
    assert_one_line_error(result, "model.safetensors")
    assert _no_run_dir(tmp_path)


def test_validation_prompts_seen_in_training_are_refused_unless_allowed(run, ws, tmp_path):
    """The HelpSteer2 leak: a --data file holding validation rows too. Refused with the count."""
    val = [json.loads(line) for line in (ws / "val.jsonl").read_text().splitlines()]
    leaky = B.write_jsonl(tmp_path / "leaky.jsonl", B.preference_rows(64, 1) + val[:5])
    result = _train(run, ws, tmp_path / "run", data=leaky)
    assert_one_line_error(result, "5 of 48 validation examples", "--allow-overlap")
    assert _no_run_dir(tmp_path)
    result = _train(run, ws, tmp_path / "run", "--allow-overlap", "--format", "json", data=leaky)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["prompt_overlap"] == 5


def test_a_tokenizer_beyond_the_embedding_is_refused(run, ws, tmp_path):
    """A tokenizer from another model whose ids exceed the embedding's rows (XLA would clamp them silently)."""
    from transformers import AutoTokenizer

    base = tmp_path / "bigtok"
    shutil.copytree(ws / "base", base)
    vocab = json.loads((base / "config.json").read_text())["vocab_size"]
    tok = AutoTokenizer.from_pretrained(base)
    words = [f"zzword{i}" for i in range(vocab - len(tok) + 5)]
    tok.add_tokens(words)
    tok.save_pretrained(base)
    rows = [{"prompt": "1: " + w, "chosen": f"{w} fox", "rejected": f"{w} dog"} for w in words]
    data = B.write_jsonl(tmp_path / "words.jsonl", rows)
    result = _train(run, ws, tmp_path / "run", base=base, data=data)
    assert_one_line_error(result, "bigtok: its tokenizer makes token id", f"embedding has {vocab} rows")
    assert _no_run_dir(tmp_path)


def test_run_warnings_say_what_makes_a_run_unlike_the_studys():
    from trainer_jax.train.recipes import make_config
    from trainer_jax.train.run import run_warnings

    counts = {"train": 384, "train_filtered": 0, "train_truncated": 0, "eval": 200, "eval_filtered": 3,
              "eval_truncated": 0}
    config = make_config("bradley_terry")  # batch 64, 20 warm-up steps: 384 pairs make 6 steps
    warmup, few, over, single = run_warnings(config, 6, counts, [2e-6], labelling=True)
    assert warmup.startswith("all 6 optimizer steps fall inside the 20-step warm-up")
    assert few.startswith("only 6 optimizer step(s) (384 examples, batch 64, 1 epoch(s)): fewer than 10")
    assert over.startswith("3 of 203 eval examples (1.5%) are longer than --max-length 2048 tokens and were dropped")
    assert single.startswith("the label comes from one learning rate (2e-06)")
    assert run_warnings(config, 60, {**counts, "eval_filtered": 2}, [1e-6, 2e-6], labelling=True) == []


MODEL = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
# (name, args with "{}" where the bad path goes, what must not appear); the trainer's side of tests/test_files.py
TRAINER_INPUTS = [
    ("train BASE_DIR", ["train", "{}", "--data", "TRAIN", "--eval-data", "VAL", "--out", "OUT"]),
    ("train --data", ["train", "BASE", "--data", "{}", "--eval-data", "VAL", "--out", "OUT"]),
    ("train --eval-data", ["train", "BASE", "--data", "TRAIN", "--eval-data", "{}", "--out", "OUT"]),
    ("train --rewardbench", ["train", "BASE", "--data", "TRAIN", "--eval-data", "VAL", "--out", "OUT",
                             "--rewardbench", "{}"]),
    ("score MODEL_DIR", ["score", "{}", "--data", "RB", "--out", "OUT"]),
    ("score --data", ["score", MODEL, "--data", "{}", "--out", "OUT"]),
    ("probe MODEL_DIR", ["probe", "{}", "--out", "OUT"]),
    ("probe --corpus", ["probe", MODEL, "--corpus", "{}", "--out", "OUT"]),
    ("probe compare", ["probe", "compare", "{}"]),
]


@pytest.mark.parametrize("name, template", TRAINER_INPUTS, ids=[n for n, _ in TRAINER_INPUTS])
def test_every_trainer_input_in_every_bad_shape_is_one_line(run, ws, tmp_path, name, template):
    from tests.test_files import _bad_inputs

    out = tmp_path / "out"
    fill = {"TRAIN": ws / "train.jsonl", "VAL": ws / "val.jsonl", "RB": ws / "rb.jsonl", "BASE": ws / "base"}
    for case, path in _bad_inputs(tmp_path).items():
        args = [str(path) if a == "{}" else str(out / case) if a == "OUT" else fill.get(a, a) for a in template]
        if name.startswith("train"):
            args += ["--recipe", "bradley_terry", "--batch-size", "16", "--max-length", "64", "--dtype", "float32"]
        result = run(*args)
        assert result.exit_code == 2, (case, result.exit_code, result.output[-400:])
        assert_one_line_error(result)
        assert not out.exists(), (case, "something was written")
