"""basepick ingest: lm-evaluation-harness results → canonical features with the leaderboard's normalisation."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictor.data import harness as H
from predictor.data import ingest as I
from predictor.data import shipped as D
from tests.conftest import assert_one_line_error, pythia_v2_and_v1_runs, write

HARNESS = Path(__file__).parent / "fixtures" / "harness"
PYTHIA = HARNESS / "pythia-1b"
PYTHIA_JSON = next(PYTHIA.rglob("results_*.json"))
V1_RUN = HARNESS / "v1-run"


def read_features(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["model_id"]: row for row in csv.DictReader(f)}


def copy_results(tmp_path: Path, edit) -> Path:
    """A copy of the pythia results folder with ``edit(doc)`` applied to its JSON."""
    folder = tmp_path / "results"
    shutil.copytree(PYTHIA, folder)
    target = next(folder.rglob("results_*.json"))
    doc = json.loads(target.read_text(encoding="utf-8"))
    edit(doc)
    target.write_text(json.dumps(doc), encoding="utf-8")
    return folder


# --------------------------------------------------------------------------------------------------
# Normalisation: parity with the shipped leaderboard snapshot


def test_pythia_parity_with_the_shipped_snapshot(run, tmp_path):
    """The leaderboard's published per-task results of pythia-1b normalise to exactly the scores the
    shipped v2 snapshot holds for it (BBH and MuSR need the per-subtask rule)."""
    out = tmp_path / "features.csv"
    result = run("ingest", PYTHIA, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "Math-Verify" in result.stderr
    row = read_features(out)["EleutherAI/pythia-1b"]
    snap = D.load_snapshot().row("EleutherAI/pythia-1b")
    for name in ("ifeval", "bbh", "musr", "gpqa", "mmlu_pro"):
        assert float(row[name]) == pytest.approx(snap[name], abs=1e-6), name
    assert float(row["bbh"]) == pytest.approx(2.29398639957629, abs=1e-9)
    assert float(row["musr"]) == pytest.approx(2.734375, abs=1e-9)
    # MATH: the harness's exact_match (4 of 1,324); the snapshot holds the Math-Verify re-score (12 of 1,324)
    assert float(row["math_lvl5"]) == pytest.approx(100 * 4 / 1324, abs=1e-9)
    assert snap["math_lvl5"] == pytest.approx(100 * 12 / 1324, abs=1e-9)
    assert all(row[name] == "" for name in D.F.V1_SCORES)  # missing is missing, never 0


def _v2_table():
    with (D.benchmarks_dir() / D.V2_FILE).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name, task", [("gpqa", "gpqa"), ("mmlu_pro", "mmlu_pro"), ("math_lvl5", "math"), ("ifeval", "ifeval")])
def test_normalise_reproduces_every_snapshot_row(name, task):
    """Where the raw aggregate suffices, raw → normalised matches all 4,576 leaderboard rows."""
    rows = _v2_table()
    raw = np.array([float(r[f"evaluations_{task}_value"]) for r in rows])
    published = np.array([float(r[f"evaluations_{task}_normalized_score"]) for r in rows])
    ours = np.array([I.normalise(v, I.LOWER_BOUND[name]) for v in raw])
    assert np.max(np.abs(ours - published)) < 1e-9
    assert (raw < I.LOWER_BOUND[name]).sum() == 0 or published[raw < I.LOWER_BOUND[name]].max() == 0.0


def test_musr_documentation_example():
    """The normalisation page's MuSR example: 0.7 / 0.4 / 0.6 → 40, 25, 40 → 35 (with exact 1/3)."""
    tasks = {f"leaderboard_musr_{sub}": {"acc_norm,none": value} for sub, value in zip(I.MUSR_CHOICES, (0.7, 0.4, 0.6))}
    run = H.Run(Path("x.json"), "acme/x", "0.4.12", "hf", "bfloat16", False, False, {}, {}, None, tasks, {})
    scores, _ = I.scores_from_results(H.merge("acme/x", [run]))
    assert scores["musr"] == pytest.approx((40 + 25 + 40) / 3)


@given(raw=st.floats(0, 1), lower=st.sampled_from([0.0, 0.1, 0.25, 1 / 3, 0.5]))
def test_normalise_properties(raw, lower):
    value = I.normalise(raw, lower)
    assert 0.0 <= value <= 100.0 + 1e-9
    assert (value == 0.0) == (raw <= lower)
    assert I.normalise(1.0, lower) == pytest.approx(100.0)
    assert I.normalise(min(raw + 0.01, 1.0), lower) >= value  # monotone


def test_v1_tasks_golden(run, tmp_path):
    out = tmp_path / "f.csv"
    assert run("ingest", V1_RUN, "--out", out).exit_code == 0
    row = read_features(out)["acme/tiny-base-1b"]
    golden = {"arc": 55.0, "hellaswag": 75.0, "truthfulqa": 45.0, "winogrande": 70.0, "gsm8k": 25.0,
              "mmlu": 100 * (29 * 0.6 + 28 * 0.4) / 57}  # plain mean of the 57 subjects, not the weighted group
    for name, value in golden.items():
        assert float(row[name]) == pytest.approx(value, abs=1e-8), name
    assert all(row[name] == "" for name in D.F.V2_SCORES)


def test_group_score_recomputed_from_subtasks_when_absent(tmp_path):
    def drop_groups(doc):
        for key in ("leaderboard_gpqa", "leaderboard_math_hard"):
            doc["results"].pop(key)
            doc["groups"].pop(key)

    scores = I.read_results(copy_results(tmp_path, drop_groups))[0].scores
    full = I.read_results(PYTHIA)[0].scores
    assert scores["gpqa"] == pytest.approx(full["gpqa"], abs=1e-9)
    assert scores["math_lvl5"] == pytest.approx(full["math_lvl5"], abs=1e-9)


# --------------------------------------------------------------------------------------------------
# Output file: merge in place, atomic, idempotent


def test_existing_file_is_updated_in_place(run, tmp_path):
    out = write(tmp_path / "f.csv", "model_id,params_b,ifeval\nacme/other,3,50\nEleutherAI/pythia-1b,1.08,99\n")
    assert run("ingest", PYTHIA, "--out", out).exit_code == 0
    rows = read_features(out)
    assert rows["acme/other"]["ifeval"] == "50" and rows["acme/other"]["params_b"] == "3"
    assert float(rows["EleutherAI/pythia-1b"]["ifeval"]) == pytest.approx(22.0794159, abs=1e-6)
    assert rows["EleutherAI/pythia-1b"]["params_b"] == "1.08"  # a column ingest does not compute is kept
    first = out.read_bytes()
    assert run("ingest", PYTHIA, "--out", out).exit_code == 0
    assert out.read_bytes() == first  # idempotent
    assert run("ingest", V1_RUN, "--out", out).exit_code == 0
    assert set(read_features(out)) == {"acme/other", "EleutherAI/pythia-1b", "acme/tiny-base-1b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]  # no temporary files left


def test_ingested_features_rank(run, tmp_path):
    def rename(doc):
        doc["model_name"] = "acme/pythia-clone"
        doc["config"]["model_args"] = doc["config"]["model_args"].replace("EleutherAI/pythia-1b", "acme/pythia-clone")

    out = tmp_path / "f.csv"
    assert run("ingest", copy_results(tmp_path, rename), "--out", out).exit_code == 0
    write(out, out.read_text(encoding="utf-8").replace("model_id,", "model_id,params_b,", 1).replace("acme/pythia-clone,", "acme/pythia-clone,1.08,", 1))
    result = run("rank", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "not a basepick feature" not in result.stderr  # the lm_eval_* columns are known, not ignored
    (cand,) = json.loads(result.stdout)["candidates"]
    assert cand["model_id"] == "acme/pythia-clone"
    assert cand["harness"]["lm_eval_settings"] == "leaderboard" and cand["harness"]["lm_eval_version"] == "git 80c5a43"


def test_model_id_from_model_args(tmp_path):
    def no_name(doc):
        del doc["model_name"]

    assert I.read_results(copy_results(tmp_path, no_name))[0].model_id == "EleutherAI/pythia-1b"
    assert I.read_results(V1_RUN)[0].model_id == "acme/tiny-base-1b"  # model_args as a dict


# --------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written


def _set(path: list, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (_set(["results", "leaderboard_mmlu_pro", "acc,none"], float("nan")), ["leaderboard_mmlu_pro", "not an accuracy"]),
        (_set(["results", "leaderboard_mmlu_pro", "acc,none"], 1e308), ["not an accuracy"]),
        (_set(["results", "leaderboard_ifeval", "inst_level_strict_acc,none"], "N/A"), ["leaderboard_ifeval"]),
        (lambda doc: doc["results"].pop("leaderboard_bbh_navigate"), ["leaderboard_bbh_", "navigate", "whole"]),
        (_set(["model_name"], "/models/my-ckpt"), ["local path", "--model-id"]),
        (_set(["model_name"], "bad\nid"), ["not a Hugging Face model id"]),
        (lambda doc: doc.update(results={"unrelated_task": {"acc,none": 0.5}}, groups={}), ["no usable leaderboard task"]),
        (_set(["results"], []), ["no 'results' object"]),
    ],
)
def test_bad_results(run, tmp_path, edit, fragments):
    out = tmp_path / "out.csv"
    result = run("ingest", copy_results(tmp_path, edit), "--out", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b"", ["empty"]),
        (b"   \n", ["empty"]),
        (b'{"results": {"leaderboard_ifeval": {"prompt_level', ["not valid JSON"]),
        (b"model_id,ifeval\nx,1\n", ["not valid JSON"]),
        ("{\"results\": {}, \"model_name\": \"Qw\u00ebn\"}".encode("latin-1"), ["not UTF-8"]),
        (b"[" * 100_000, ["not valid JSON"]),
    ],
)
def test_unreadable_results(run, tmp_path, content, fragments):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results_2025.json").write_bytes(content)
    result = run("ingest", tmp_path / "r", "--out", tmp_path / "out.csv")
    assert_one_line_error(result, "results_2025.json", *fragments)
    assert not (tmp_path / "out.csv").exists()


def test_folder_without_results(run, tmp_path):
    assert_one_line_error(run("ingest", tmp_path, "--out", tmp_path / "o.csv"), "no lm-evaluation-harness results")
    assert_one_line_error(run("ingest", tmp_path / "nope", "--out", tmp_path / "o.csv"), "no such file")


def test_bad_existing_output_is_left_alone(run, tmp_path):
    out = tmp_path / "f.csv"
    out.write_bytes(b"\xff\xfe binary \x00")
    assert_one_line_error(run("ingest", PYTHIA, "--out", out), "f.csv")
    assert out.read_bytes() == b"\xff\xfe binary \x00"
    assert_one_line_error(run("ingest", PYTHIA, "--out", tmp_path / "no" / "f.csv"), "does not exist")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.integers(1, len(PYTHIA_JSON.read_bytes().rstrip()) - 1).map(lambda n: PYTHIA_JSON.read_bytes()[:n]),  # truncated
))
def test_any_broken_results_file_is_a_one_line_error(run, tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("h")
    (folder / "results_x.json").write_bytes(content)
    out = folder / "out.csv"
    result = run("ingest", folder, "--out", out)
    assert_one_line_error(result)
    assert not out.exists() and [p.name for p in folder.iterdir()] == ["results_x.json"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.text(min_size=1, max_size=60), value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30)))
def test_odd_ids_and_values_never_crash(run, tmp_path_factory, model, value):
    doc = {"results": {"leaderboard_mmlu_pro": {"acc,none": value}}, "model_name": model}
    folder = tmp_path_factory.mktemp("h")
    (folder / "results_x.json").write_text(json.dumps(doc), encoding="utf-8")
    out = folder / "out.csv"
    result = run("ingest", folder, "--out", out)
    ok_value = isinstance(value, float) and math.isfinite(value) and 0 <= value <= 1 or value in (0, 1)
    if result.exit_code == 0:
        assert ok_value and model.strip() in read_features(out)
    else:
        assert_one_line_error(result)
        assert not out.exists()


def test_files_of_one_model_merge_and_model_id_override(run, tmp_path):
    folder = pythia_v2_and_v1_runs(tmp_path / "runs")
    scores = I.read_results(folder)
    assert len(scores) == 1 and set(scores[0].scores) == set(I.FEATURE_COLUMNS)
    assert_one_line_error(run("ingest", HARNESS, "--out", tmp_path / "o.csv", "--model-id", "acme/x"), "several")


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-5, 5) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["acc,none", "acc_norm,none", "exact_match,none", "effective", "limit", "model_args",
                         "pretrained", "leaderboard_gpqa", "leaderboard_mmlu_pro", "leaderboard_bbh_navigate"]),
        children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.fixed_dictionaries({"results": st.dictionaries(st.sampled_from(["leaderboard_gpqa", "leaderboard_mmlu_pro",
                                                                              "leaderboard_ifeval", "gsm8k", "mmlu"]), json_values, max_size=3)},
                                 optional={"groups": json_values, "n-samples": json_values, "n-shot": json_values,
                                           "config": json_values, "model_name": json_values}))
def test_oddly_shaped_results_never_crash(run, tmp_path_factory, doc):
    folder = tmp_path_factory.mktemp("h")
    (folder / "results_x.json").write_text(json.dumps(doc), encoding="utf-8")
    result = run("ingest", folder, "--out", folder / "out.csv", "--model-id", "acme/x")
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert_one_line_error(result)
        assert not (folder / "out.csv").exists()
