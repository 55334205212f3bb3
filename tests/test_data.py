"""The shipped snapshot: file discovery, the one-row-per-model rule, missing stays missing, labels."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.errors import DataError
from tests.conftest import REPO, write


@pytest.fixture(scope="module")
def snapshot():
    return D.load_snapshot()


def test_found_from_a_foreign_working_directory(tmp_path):
    code = "from predictor.data import shipped; print(shipped.benchmarks_dir()); print(len(shipped.load_snapshot().v2_ids))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    folder, n = out.stdout.split()
    assert folder == str(REPO / "data" / "benchmarks")
    assert int(n) == 4497  # distinct model names in the v2 export


def test_v2_row_rule_prefers_the_chat_template_row(snapshot):
    row = snapshot.row("meta-llama/Meta-Llama-3-8B-Instruct")
    assert row["ifeval"] == pytest.approx(74.08, abs=0.01)  # the _True row; the _False row has 47.82


def test_v2_model_with_only_a_no_template_row_keeps_it(snapshot):
    assert snapshot.row("meta-llama/Llama-3.1-8B-Instruct")["ifeval"] == pytest.approx(49.22, abs=0.01)


def test_missing_v1_is_nan_never_zero(snapshot):
    row = snapshot.row("Qwen/Qwen2.5-7B-Instruct")  # released after v1 closed
    assert all(math.isnan(row[name]) for name in ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k"))
    assert row["mean_v2"] > 0


def test_seed_metadata_wins_and_every_labelled_model_has_v2_scores(snapshot):
    labels = LB.load_labels([D.benchmarks_dir() / D.LABELS_FILE])
    assert len(labels) == 82
    for label in labels:
        row = snapshot.row(label.model_id)
        assert row is not None and not math.isnan(row["mean_v2"]), label.model_id
    assert snapshot.row("google/gemma-2-9b-it")["params_b"] == 9.24
    assert snapshot.row("meta-llama/Llama-3.1-8B")["post_training"] == 0.0  # base


def test_mean_v2_is_the_plain_mean_of_the_six(snapshot):
    i = snapshot.index["Qwen/Qwen2.5-7B-Instruct"]
    six = [snapshot.columns[n][i] for n in ("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro")]
    assert snapshot.columns["mean_v2"][i] == pytest.approx(np.mean(six))


LABEL_HEADER = "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n"


def test_labels_that_agree_merge_and_a_base_labelled_twice_names_both_rows(tmp_path):
    a = write(tmp_path / "a.csv", LABEL_HEADER + "google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,81.25\n")
    b = write(tmp_path / "b.csv", LABEL_HEADER + "google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,81.25\n")
    assert len(LB.read_labels([a, b])) == 1
    c = write(tmp_path / "c.csv", LABEL_HEADER + "google/gemma-2-9b-it,regression,hs2,rb1,91,70,80,85,81.5\n")
    with pytest.raises(DataError, match=r"c.csv row 2 labels google/gemma-2-9b-it \(regression\) again after .*a.csv row 2"):
        LB.read_labels([a, c])


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("x/y,regression,hs2,rb1,90,70,80,85,120\n", "not a RewardBench score"),
        ("x/y,regression,hs2,rb1,90,seventy,80,85,81.25\n", "column chat_hard"),
        (",regression,hs2,rb1,90,70,80,85,81.25\n", "empty model_id"),
    ],
)
def test_bad_label_rows(tmp_path, body, fragment):
    with pytest.raises(DataError, match=fragment):
        LB.load_labels([write(tmp_path / "l.csv", LABEL_HEADER + body)])


def test_snapshot_cache_round_trips_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("BASEPICK_CACHE_DIR", str(tmp_path))
    parsed = D.load_snapshot()  # parses, writes the cache
    (cache,) = tmp_path.glob("snapshot-*.npz")
    cached = D.load_snapshot()
    assert cached.ids == parsed.ids and cached.v2_ids == parsed.v2_ids
    for name, col in parsed.columns.items():
        np.testing.assert_array_equal(cached.columns[name], col)
    cache.write_bytes(b"garbage")
    again = D.load_snapshot()
    np.testing.assert_array_equal(again.columns["mean_v2"], parsed.columns["mean_v2"])


def test_unwritable_cache_is_ignored(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BASEPICK_CACHE_DIR", str(blocker / "sub"))  # cannot mkdir under a file
    assert len(D.load_snapshot().v2_ids) == 4497
