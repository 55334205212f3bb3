"""Label validation for fit, evaluate and validate (issue 13, item 2): points, complete, consistent, known."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.errors import DataError
from tests.conftest import assert_one_line_error, write

HEADER = "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n"
GOOD = "google/gemma-2-9b-it,regression,hs2,rewardbench-v1,90,70,80,85,81.25\n"
SEED = D.benchmarks_dir() / D.LABELS_FILE

BAD_ROWS = [
    ("google/gemma-2-9b-it,regression,hs2,rb1,0.9,0.7,0.8,0.85,0.8125\n", ["row 3", "fractions among points"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,,80,85,85\n", ["row 3", "column chat_hard", "missing"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,NaN,80,85,85\n", ["row 3", "column chat_hard", "missing"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,\n", ["row 3", "column score", "nothing is imputed"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,nan\n", ["row 3", "column score", "missing"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,81.5\n", ["row 3", "score 81.5 is not the mean", "81.25"]),
    ("google/gemma-2-9b-it,dpo,hs2,rb1,90,70,80,85,81.25\n", ["row 3", "unknown recipe 'dpo'", "regression, bradley_terry"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,inf,81.25\n", ["row 3", "column reasoning", "not a finite number"]),
    ("google/gemma-2-9b-it,regression,hs2,rb1,190,70,80,85,106.25\n", ["row 3", "column score", "points 0-100"]),
]


@pytest.mark.parametrize("row, fragments", BAD_ROWS)
def test_bad_label_rows_are_errors_naming_the_row(tmp_path, row, fragments):
    path = write(tmp_path / "l.csv", HEADER + "Qwen/Qwen2.5-7B-Instruct,regression,hs2,rb1,90,70,80,85,81.25\n" + row)
    with pytest.raises(DataError) as info:
        LB.load_labels([path])
    for fragment in ["l.csv", *fragments]:
        assert fragment in str(info.value)


@pytest.mark.parametrize("command", [["fit", "--out", "OUT"], ["evaluate"], ["validate"]])
@pytest.mark.parametrize("row, fragments", BAD_ROWS[:1] + BAD_ROWS[2:3] + BAD_ROWS[5:7])
def test_every_label_command_refuses_them(run, tmp_path, command, row, fragments):
    path = write(tmp_path / "l.csv", HEADER + "Qwen/Qwen2.5-7B-Instruct,regression,hs2,rb1,90,70,80,85,81.25\n" + row)
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    args = [*args, path] if command == ["validate"] else [*args, "--labels", path]
    assert_one_line_error(run(*args), "l.csv", *fragments)
    assert not (tmp_path / "out").exists()


def test_a_file_of_fractions_says_so(tmp_path):
    path = write(tmp_path / "l.csv", HEADER + "google/gemma-2-9b-it,regression,hs2,rb1,0.9,0.7,0.8,0.85,0.8125\n"
                 + "Qwen/Qwen2.5-7B-Instruct,regression,hs2,rb1,0.9,0.7,0.8,0.8,0.8\n")
    with pytest.raises(DataError, match="l.csv: every value is at most 1: these are fractions.*multiply them by 100"):
        LB.load_labels([path])


def test_score_within_the_tolerance_of_the_section_mean_is_accepted(tmp_path):
    path = write(tmp_path / "l.csv", HEADER + "google/gemma-2-9b-it,regression,hs2,rb1,90,70,80,85,81.1\n")
    (label,) = LB.load_labels([path])
    assert label.values["score"] == 81.1 and not label.partial  # the study's tables round to 0.1


def test_shipped_labels_pass_every_check():
    assert len(LB.load_labels([SEED])) == 82


def partial_labels(tmp_path):
    """The shipped regression labels, one of them marked partial the way `train --labels-out` marks it."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    rows = [r for r in lines[1:] if ",regression," in r]
    rows[0] = rows[0].replace(",rewardbench-v1,", ",rewardbench-v1-partial,")
    return write(tmp_path / "partial.csv", "\n".join([lines[0], *rows]) + "\n"), rows[0].split(",")[0]


def test_fit_refuses_partial_labels_unless_allowed(run, tmp_path):
    path, model = partial_labels(tmp_path)
    assert_one_line_error(run("fit", "--no-shipped-labels", "--labels", path, "--out", tmp_path / "p"),
                          "partial.csv row 2", model, "rewardbench-v1-partial", "--allow-partial")
    assert not (tmp_path / "p").exists()
    result = run("fit", "--no-shipped-labels", "--labels", path, "--out", tmp_path / "p", "--allow-partial")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "p" / "metadata.json").is_file()


def test_evaluate_refuses_partial_labels_and_validate_says_so(run, tmp_path):
    path, model = partial_labels(tmp_path)
    assert_one_line_error(run("evaluate", "--labels", path, "--no-baselines"), "--allow-partial")
    result = run("validate", path, "--format", "json")
    assert result.exit_code == 0 and "1 label(s) come from an incomplete RewardBench run" in result.stderr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(
    st.sampled_from(["google/gemma-2-9b-it", "Qwen/Qwen2.5-7B-Instruct", "acme/x", ""]),
    st.sampled_from(["regression", "bradley_terry", "dpo", "Regression", ""]),
    st.sampled_from(["rewardbench-v1", "rewardbench-v1-partial", ""]),
    st.lists(st.one_of(st.floats(-5, 120).map(lambda x: f"{x:.4g}"), st.sampled_from(["", "nan", "inf", "0.5", "x"])),
             min_size=5, max_size=5)), min_size=1, max_size=3))
def test_random_label_rows_never_traceback(run, tmp_path_factory, rows):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([HEADER.strip().split(",")]
                                                    + [[m, r, "hs2", e, *v] for m, r, e, v in rows])
    path = tmp_path_factory.mktemp("l") / "l.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    for args in (["evaluate", "--labels", path, "--no-baselines", "--bootstrap", "0"], ["validate", path]):
        result = run(*args)
        assert "Traceback" not in result.output
        if result.exit_code != 0:
            assert_one_line_error(result)


# One base, one label (issue 16, item 2)

GEMMA_HS2 = "google/gemma-2-9b-it,regression,helpsteer2,rewardbench-v1,90,70,80,85,81.25\n"


@pytest.mark.parametrize("train_data, eval_", [("HelpSteer2", "rewardbench-v1"), ("helpsteer2", "rewardbench"),
                                               ("nvidia/HelpSteer2", "RewardBench"), ("HelpSteer-2", "allenai/reward-bench")])
def test_identity_ignores_case_and_aliases(train_data, eval_):
    assert LB.canonical_train_data(train_data) == "helpsteer2"
    assert LB.canonical_eval(eval_) == "rewardbench-v1"
    assert LB.canonical_train_data("HelpSteer2_Preference") == "helpsteer2-preference"


def test_eval_aliases_keep_the_version_and_the_partial_mark():
    assert LB.canonical_eval("rewardbench2") == LB.canonical_eval("RewardBench-v2") == "rewardbench-v2"
    assert LB.canonical_eval("rewardbench-v1-partial") == "rewardbench-v1-partial"
    assert LB.canonical_eval("RewardBench-partial") == "rewardbench-v1-partial"


@pytest.mark.parametrize("second", [
    "google/gemma-2-9b-it,regression,HelpSteer2,rewardbench-v1,88,70,80,85,80.75\n",   # case of train_data
    "google/gemma-2-9b-it,regression,helpsteer2,rewardbench,88,70,80,85,80.75\n",      # alias of eval
    "Google/Gemma-2-9B-it,regression,helpsteer2,rewardbench-v1,88,70,80,85,80.75\n",   # case of the id
    "google/gemma-2-9b-it,regression,my-own-data,rewardbench-v1,88,70,80,85,80.75\n",  # other data: still one base
])
@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_a_base_labelled_twice_is_an_error_naming_both_rows(run, tmp_path, second, command):
    labels = write(tmp_path / "l.csv", HEADER + GEMMA_HS2 + second)
    args = ["--no-shipped-labels", "--out", tmp_path / "p"] if command == "fit" else ["--bootstrap", "0", "--no-baselines"]
    result = run(command, "--labels", labels, *args)
    assert_one_line_error(result, "l.csv row 3", "again after", "row 2", "--on-duplicate")
    assert not (tmp_path / "p").exists()


def test_the_shipped_labels_already_label_a_base_a_user_labels_again(run, tmp_path):
    """fit's main use: the shipped labels plus mine; gemma-2-9b-it is among the shipped ones."""
    labels = write(tmp_path / "l.csv", HEADER + "google/gemma-2-9b-it,regression,HelpSteer2,RewardBench,88,70,80,85,80.75\n")
    assert_one_line_error(run("fit", "--labels", labels, "--out", tmp_path / "p"), "l.csv row 2",
                          "seed_paper_rewardbench.csv row", "--on-duplicate")


def test_on_duplicate_mean_and_last(tmp_path):
    path = write(tmp_path / "l.csv", HEADER + GEMMA_HS2 + "google/gemma-2-9b-it,regression,HelpSteer2,rewardbench,88,70,80,85,80.75\n")
    notes = []
    (mean,) = LB.read_labels([path], on_duplicate="mean", note=notes.append)
    assert mean.values["chat"] == 89.0 and mean.values["score"] == pytest.approx(81.0)
    assert "labelled 2 times" in notes[0] and "mean" in notes[0]
    (last,) = LB.read_labels([path], on_duplicate="last")
    assert last.values["chat"] == 88.0 and last.source.endswith("row 3")


def test_identical_rows_are_one_label():
    assert len(LB.read_labels([SEED, SEED])) == 82


def test_the_cli_passes_on_duplicate_through(run, tmp_path):
    labels = write(tmp_path / "l.csv", HEADER + "google/gemma-2-9b-it,regression,HelpSteer2,RewardBench,88,70,80,85,80.75\n")
    result = run("fit", "--labels", labels, "--on-duplicate", "last", "--out", tmp_path / "p")
    assert result.exit_code == 0, result.stderr
    assert "google/gemma-2-9b-it (regression) is labelled 2 times" in result.stderr
    meta = __import__("json").loads((tmp_path / "p" / "metadata.json").read_text())
    assert meta["models"]["regression/score"]["calibration"]["ids"].count("google/gemma-2-9b-it") == 1
    assert len(meta["labelled"]["regression"]["models"]) == 42  # still 42 bases, not 43


def test_a_label_for_a_base_without_v2_scores_is_refused_naming_the_inputs(run, tmp_path):
    """0-hero/Matter-0.1-7B is in the v1 snapshot only: predicting it would mean imputing the v2 scores."""
    labels = write(tmp_path / "l.csv", HEADER + "0-hero/Matter-0.1-7B,regression,helpsteer2,rewardbench-v1,90,70,80,85,81.25\n")
    for command, args in (("fit", ["--out", tmp_path / "p"]), ("evaluate", ["--bootstrap", "0"])):
        assert_one_line_error(run(command, "--labels", labels, *args), "l.csv row 2", "0-hero/Matter-0.1-7B lacks",
                              "ifeval", "mmlu_pro", "--features")


def test_a_label_id_in_another_case_joins_the_snapshot_spelling(tmp_path):
    labels = LB.read_labels([write(tmp_path / "l.csv", HEADER + "QWEN/qwen2.5-7b-instruct,regression,hs2,rb1,90,70,80,85,81.25\n")])
    ids, _, _ = LB.join_labels(labels, D.load_snapshot(), "regression")
    assert ids == ["Qwen/Qwen2.5-7B-Instruct"]


def test_plan_reads_labels_by_the_same_rule(run, tmp_path):
    candidates = write(tmp_path / "c.csv", "model_id\ngoogle/gemma-2-9b-it\nQwen/Qwen2.5-7B-Instruct\nmeta-llama/Llama-3.1-8B-Instruct\n")
    twice = write(tmp_path / "l.csv", HEADER + GEMMA_HS2 + "GOOGLE/gemma-2-9b-it,regression,HelpSteer2,rewardbench,88,70,80,85,80.75\n")
    assert_one_line_error(run("plan", candidates, "--budget", "1", "--labels", twice), "again after", "--on-duplicate")
    result = run("plan", candidates, "--budget", "1", "--labels", twice, "--on-duplicate", "mean", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert __import__("json").loads(result.stdout)["pool"]["measured"] == 1


def test_a_fully_measured_pool_says_so(run, tmp_path):
    candidates = write(tmp_path / "c.csv", "model_id\ngoogle/gemma-2-9b-it\nQwen/Qwen2.5-7B-Instruct\n")
    labels = write(tmp_path / "l.csv", HEADER + GEMMA_HS2 + "Qwen/Qwen2.5-7B-Instruct,regression,helpsteer2,rewardbench-v1,80,70,80,85,78.75\n")
    assert_one_line_error(run("plan", candidates, "--budget", "1", "--labels", labels),
                          "all 2 candidates are measured already", "google/gemma-2-9b-it")


def test_labels_from_one_learning_rate_are_said(tmp_path):
    """`train --labels-out` records lrs_tried; the study's labels are the best of a grid."""
    path = write(tmp_path / "l.csv", HEADER.rstrip("\n") + ",lrs_tried\n" + GEMMA_HS2.rstrip("\n") + ",1\n"
                 + "Qwen/Qwen2.5-7B-Instruct,regression,helpsteer2,rewardbench-v1,90,70,80,85,81.25,10\n")
    notes = []
    labels = LB.read_labels([path], note=notes.append)
    assert sorted(lab.lrs_tried for lab in labels) == [1, 10]
    assert len(notes) == 1 and "1 label(s) come from one learning rate" in notes[0] and "--lr-sweep" in notes[0]
    bad = write(tmp_path / "b.csv", HEADER.rstrip("\n") + ",lrs_tried\n" + GEMMA_HS2.rstrip("\n") + ",0.5\n")
    with pytest.raises(DataError, match="b.csv row 2, column lrs_tried"):
        LB.read_labels([bad])
