"""`basepick validate`: predictions of the shipped predictor against measured labels (no jax needed)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from predictor.data.shipped import benchmarks_dir
from predictor.errors import DataError
from tests.conftest import assert_one_line_error, write
from trainer_jax.evals.validate import spearman, validate

SEED_LABELS = benchmarks_dir() / "seed_paper_rewardbench.csv"


@pytest.fixture
def labels(tmp_path):
    lines = SEED_LABELS.read_text().splitlines()
    header, rows = lines[0], [r for r in lines[1:] if ",regression," in r][:4]
    rows.append("unknown-org/not-a-model,regression,helpsteer2,rewardbench-v1,50,50,50,50,50")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join([header + ",run_dir", *(r + ",/runs/x" for r in rows)]) + "\n")
    return path


def test_rows_ranks_and_metrics(labels):
    report = validate(labels)
    assert len(report.rows) == 4 and len(report.summaries) == 1
    assert report.skipped == ("unknown-org/not-a-model (regression): not in the shipped benchmark snapshot; give its "
                              "scores with --features",)
    assert all(r.in_sample for r in report.rows)  # the fixture's rows are shipped labels the predictor was fitted on
    measured = [r.measured["score"] for r in report.rows]
    assert measured == sorted(measured, reverse=True)  # rows in measured order
    assert [r.measured_rank for r in report.rows] == [1, 2, 3, 4]
    assert sorted(r.predicted_rank for r in report.rows) == [1, 2, 3, 4]
    for r in report.rows:
        assert r.error == pytest.approx(r.predicted["score"] - r.measured["score"])
        assert r.rank_change == r.measured_rank - r.predicted_rank
        assert set(r.predicted) == {"score", "chat", "chat_hard", "safety", "reasoning"}
    (summary,) = report.summaries
    assert summary.mae == pytest.approx(np.mean([abs(r.error) for r in report.rows]))
    expected_rho = spearman(np.array([r.predicted["score"] for r in report.rows]), np.array(measured))
    assert summary.spearman == pytest.approx(expected_rho)
    out = report.to_json()
    assert out["schema_version"] == 1 and json.dumps(out)


def test_metrics_need_three_rows(tmp_path):
    lines = SEED_LABELS.read_text().splitlines()
    path = tmp_path / "two.csv"
    path.write_text("\n".join([lines[0], *[r for r in lines[1:] if ",bradley_terry," in r][:2]]) + "\n")
    (summary,) = validate(path).summaries
    assert summary.n == 2 and summary.mae is None and summary.spearman is None


def test_spearman():
    assert spearman(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])) == pytest.approx(0.9486833)
    assert math.isnan(spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))


def test_nothing_predictable_is_an_error(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n"
                    "a/b,regression,d,rewardbench-v1,1,2,3,4,2.5\n")
    with pytest.raises(DataError, match="no label row can be predicted"):
        validate(path)


def test_cli_table_json_and_errors(run, labels, tmp_path):
    table = run("validate", labels)
    assert table.exit_code == 0 and "recipe regression: 4 bases" in table.stdout and "MAE" in table.stdout
    assert "skipped unknown-org/not-a-model" in table.stderr
    as_json = run("validate", labels, "--format", "json")
    assert as_json.exit_code == 0 and len(json.loads(as_json.stdout)["rows"]) == 4
    assert_one_line_error(run("validate", tmp_path / "missing.csv"), "missing.csv")
    assert_one_line_error(run("validate", labels, "--predictor", tmp_path), str(tmp_path))


def test_validate_and_recipes_import_no_jax():
    import subprocess
    import sys

    code = ("import sys, cli, trainer_jax, trainer_jax.evals.validate, trainer_jax.train.recipes, trainer_jax.evals.labels; "
            "assert not {'jax', 'flax', 'optax', 'torch'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# In-sample rows are said; --features reaches bases outside the snapshot (issue 13)


def label_file(tmp_path, *rows: str):
    return write(tmp_path / "l.csv", "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n"
                 + "".join(r + "\n" for r in rows))


def test_validate_says_when_its_labels_fitted_the_predictor(run, tmp_path):
    shipped = [r for r in SEED_LABELS.read_text(encoding="utf-8").splitlines() if ",regression," in r][:3]
    path = label_file(tmp_path, *shipped, "Qwen/Qwen2.5-14B-Instruct,regression,helpsteer2,rewardbench-v1,90,70,80,88,82")
    report = json.loads(run("validate", path, "--format", "json").stdout)
    in_sample = {r["model_id"]: r["in_sample"] for r in report["rows"]}
    assert in_sample == {**{r.split(",")[0]: True for r in shipped}, "Qwen/Qwen2.5-14B-Instruct": False}
    assert report["summaries"][0]["n_in_sample"] == 3
    table = run("validate", path)
    assert "3 of 4 bases were used to fit this predictor (in-sample)" in table.stdout
    assert table.stdout.count("in-sample") == 4  # three rows and the summary line


def test_validate_a_base_outside_the_snapshot_with_features(run, tmp_path):
    path = label_file(tmp_path, "acme/new-7b,regression,helpsteer2,rewardbench-v1,90,70,80,88,82")
    assert_one_line_error(run("validate", path), "no label row can be predicted", "--features")
    features = write(tmp_path / "f.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"
                     "acme/new-7b,70,35,20,8,10,35,7\n")
    result = run("validate", path, "--features", features, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert row["model_id"] == "acme/new-7b" and row["in_sample"] is False and 40 < row["predicted"]["score"] < 100


def test_validate_says_when_the_predictor_does_not_record_its_labels(run, tmp_path):
    import shutil

    from predictor.data.shipped import shipped_predictor_dir

    old = tmp_path / "old"
    shutil.copytree(shipped_predictor_dir(), old)
    meta = json.loads((old / "metadata.json").read_text())
    del meta["labelled"]  # artifacts written before fit recorded its labelled models
    (old / "metadata.json").write_text(json.dumps(meta))
    path = label_file(tmp_path, "google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,81.25")
    result = run("validate", path, "--predictor", old)
    assert result.exit_code == 0 and "does not record the bases it was fitted on" in result.stderr


def test_caveats_name_sizes_outside_the_labels_other_data_and_one_learning_rate(tmp_path):
    """A 70B base (beyond the labelled 0.49-10.3B), a label on other data, and a label from one learning rate."""
    header = "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score,lrs_tried"
    rows = ["meta-llama/Llama-3.1-70B-Instruct,regression,helpsteer2,rewardbench-v1,90,70,80,80,80,10",
            "Qwen/Qwen2.5-0.5B-Instruct,regression,my-prefs,rewardbench-v1,70,50,60,60,60,10",
            "Qwen/Qwen2.5-1.5B-Instruct,regression,helpsteer2,rewardbench-v1,80,60,70,70,70,1"]
    path = tmp_path / "labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    notes = []
    report = validate(path, note=notes.append)
    caveats = {r.model_id: r.caveats for r in report.rows}
    (big,) = caveats["meta-llama/Llama-3.1-70B-Instruct"]
    assert big.startswith("70.") and "outside the labelled sizes 0.49" in big
    assert caveats["Qwen/Qwen2.5-0.5B-Instruct"] == (
        "trained on my-prefs, not the study's helpsteer2: a label of another recipe's scale",)
    assert caveats["Qwen/Qwen2.5-1.5B-Instruct"] == (
        "one learning rate (lrs_tried=1): the study's labels are the best of the recipe's grid",)
    assert len([n for n in notes if "see each row's caveats" in n]) == 3
    from trainer_jax.evals.validate import render_table

    assert "      ! one learning rate (lrs_tried=1)" in render_table(report)
