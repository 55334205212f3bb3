"""Percent or fraction (issue 13, item 1): decided per file, recorded by ingest, overridable, checked alike."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_one_line_error, rank_json, write

PYTHIA = Path(__file__).parent / "fixtures" / "harness" / "pythia-1b"
QWEN7, QWEN3 = "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-3B-Instruct"


def predictions(run, path, *args) -> dict[str, float]:
    return {c["model_id"]: c["predicted"] for c in rank_json(run, path, *args)["candidates"]}


def test_ingested_features_are_never_guessed(run, tmp_path):
    """The issue's case: ingest then rank predicted 73.2 for pythia-1b (its GPQA 0.89 and MATH 0.30 read as
    fractions); the snapshot's own row predicts 63.5. Ingest now writes scale=percent."""
    out = tmp_path / "p.csv"
    assert run("ingest", PYTHIA, "--out", out).exit_code == 0
    (row,) = csv.DictReader(out.open(encoding="utf-8"))
    assert row["scale"] == "percent" and float(row["gpqa"]) < 1 and float(row["math_lvl5"]) < 1
    result = run("rank", out, "--format", "json")
    assert result.exit_code == 0 and "fraction" not in result.stderr
    ingested = json.loads(result.stdout)["candidates"][0]["predicted"]
    snapshot = predictions(run, write(tmp_path / "ids.csv", "model_id\nEleutherAI/pythia-1b\n"))["EleutherAI/pythia-1b"]
    assert abs(ingested - snapshot) < 1.0  # MATH differs: harness exact_match vs the leaderboard's Math-Verify


def test_small_values_in_a_percent_file_are_points(run, tmp_path):
    path = write(tmp_path / "c.csv", f"model_id,ifeval,gpqa,math_lvl5\n{QWEN7},22,0.89,0.3\n{QWEN3},60,5,8\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 0 and "fraction" not in result.stderr
    auto = {c["model_id"]: c["predicted"] for c in json.loads(result.stdout)["candidates"]}
    assert auto == predictions(run, path, "--scale", "percent")


def test_a_file_of_fractions_is_scaled_and_said(run, tmp_path):
    fractions = write(tmp_path / "f.csv", f"model_id,ifeval,bbh\n{QWEN7},0.6,0.4\n{QWEN3},0.5,0.3\n")
    points = write(tmp_path / "p.csv", f"model_id,ifeval,bbh\n{QWEN7},60,40\n{QWEN3},50,30\n")
    result = run("rank", fractions, "--format", "json")
    assert result.exit_code == 0
    assert "f.csv: every score is at most 1: read as fractions and scaled to 0-100" in result.stderr
    assert {c["model_id"]: c["predicted"] for c in json.loads(result.stdout)["candidates"]} == predictions(run, points)


def test_fractions_mixed_into_percents_is_an_error_naming_the_row(run, tmp_path):
    path = write(tmp_path / "c.csv", f"model_id,ifeval,bbh,gpqa\n{QWEN7},60,40,5\n{QWEN3},0.5,0.3,0.2\n")
    assert_one_line_error(run("rank", path), "c.csv row 3", QWEN3, "fractions mixed into percents")


def test_a_cell_out_of_line_with_its_row_is_warned(run, tmp_path):
    path = write(tmp_path / "c.csv", f"model_id,ifeval,bbh,gpqa\n{QWEN7},0.6,40,5\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 0
    assert f"c.csv row 2 ({QWEN7}), column ifeval: 0.6 is far below the row's other scores" in result.stderr
    weak = write(tmp_path / "w.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro\nacme/weak-1b,22,2.3,0.3,0.9,2.7,1.5\n")
    assert "far below" not in run("rank", weak, "--format", "json").stderr  # pythia-like: small is real


def test_scale_option_overrides(run, tmp_path):
    mixed = write(tmp_path / "m.csv", f"model_id,ifeval,bbh\n{QWEN7},60,40\n{QWEN3},0.5,0.3\n")
    result = run("rank", mixed, "--scale", "percent", "--format", "json")
    assert result.exit_code == 0 and "mixed" not in result.stderr
    assert_one_line_error(run("rank", mixed, "--scale", "fraction"), "column ifeval", "outside [0, 100]")
    declared = write(tmp_path / "d.csv", f"model_id,ifeval,bbh,scale\n{QWEN7},0.6,0.4,fraction\n")
    forced = predictions(run, declared, "--scale", "percent")  # the override beats the file's own column
    assert forced != predictions(run, declared)


def test_a_scale_column_decides_its_rows(run, tmp_path):
    declared = write(tmp_path / "d.csv", f"model_id,ifeval,bbh,scale\n{QWEN7},0.6,0.4,fraction\n{QWEN3},50,30,percent\n")
    points = write(tmp_path / "p.csv", f"model_id,ifeval,bbh\n{QWEN7},60,40\n{QWEN3},50,30\n")
    result = run("rank", declared, "--format", "json")
    assert result.exit_code == 0 and "fraction" not in result.stderr and "ignoring column" not in result.stderr
    assert {c["model_id"]: c["predicted"] for c in json.loads(result.stdout)["candidates"]} == predictions(run, points)
    bad = write(tmp_path / "b.csv", f"model_id,ifeval,scale\n{QWEN7},60,percents\n")
    assert_one_line_error(run("rank", bad), "b.csv row 2", "column scale", "not percent or fraction")


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e400"])
def test_infinity_is_an_error(run, tmp_path, cell):
    path = write(tmp_path / "c.csv", f"model_id,ifeval,bbh\n{QWEN7},{cell},40\n")
    assert_one_line_error(run("rank", path), "row 2", "column ifeval", "not a finite number")


@pytest.mark.parametrize("cell", ["NaN", "nan", ""])
def test_nan_is_missing(run, tmp_path, cell):
    path = write(tmp_path / "c.csv", f"model_id,ifeval,bbh\n{QWEN7},{cell},40\n")
    (cand,) = rank_json(run, path)["candidates"]
    assert "ifeval" in cand["features"]["snapshot"] and cand["features"]["given"] == ["bbh"]


def test_ingest_refuses_to_mark_fraction_cells_as_points(run, tmp_path):
    out = write(tmp_path / "f.csv", "model_id,arc,hellaswag\nEleutherAI/pythia-1b,0.3,0.5\nacme/other,0.4,0.6\n")
    before = out.read_bytes()
    assert_one_line_error(run("ingest", PYTHIA, "--out", out), "f.csv row 2", "arc, hellaswag are fractions")
    assert out.read_bytes() == before


# `check` reports what `rank` would say


HEADER = "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"


def check_json(run, path):
    result = run("check", path, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_check_reports_mixed_rows_and_odd_cells(run, tmp_path):
    dump = write(tmp_path / "f.csv", HEADER + "acme/a-7b,60,40,10,5,8,30,7\n" + "acme/b-7b,0.5,0.3,0.1,0.05,0.08,0.3,7\n"
                 + "acme/c-7b,0.6,40,10,5,8,30,7\n")
    code, report, stderr = check_json(run, dump)
    assert code == 1
    assert {(p["row"], p["column"]) for p in report["validation"]["invalid"]} == {(3, "scores")}
    assert "f.csv row 4 (acme/c-7b), column ifeval: 0.6 is far below the row's other scores" in stderr


def test_check_reads_a_fraction_file_like_rank(run, tmp_path):
    dump = write(tmp_path / "f.csv", HEADER + "acme/a-2b,0.5,0.3,0.1,0.05,0.08,0.3,2\n")
    code, report, stderr = check_json(run, dump)
    assert code == 0 and "every score is at most 1: read as fractions" in stderr
    declared = write(tmp_path / "d.csv", HEADER.strip() + ",scale\nacme/a-2b,22,2.3,0.3,0.9,2.7,1.5,1,percent\n")
    code, report, stderr = check_json(run, declared)
    assert code == 0 and "fraction" not in stderr and "not checked" not in stderr


def test_check_flags_infinity(run, tmp_path):
    code, report, _ = check_json(run, write(tmp_path / "f.csv", HEADER + "acme/a-2b,inf,20,10,5,5,20,2\n"))
    assert code == 1 and report["validation"]["invalid"][0]["problem"].endswith("is not a finite number")


# Any percent table: `auto` never reads it differently from `--scale percent`


_points = st.one_of(st.floats(0, 100, allow_nan=False).map(lambda x: f"{x:.3g}"), st.sampled_from(["", "0", "0.5", "1"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_points, min_size=3, max_size=3), min_size=1, max_size=4))
def test_auto_agrees_with_percent_or_says_why(run, tmp_path_factory, rows):
    ids = [QWEN7, QWEN3, "google/gemma-2-9b-it", "google/gemma-2-2b-it"]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["model_id", "ifeval", "bbh", "gpqa"]]
                                                    + [[ids[i], *r] for i, r in enumerate(rows)])
    path = tmp_path_factory.mktemp("s") / "c.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    cells = [float(c) for r in rows for c in r if c]
    auto = run("rank", path, "--format", "json")
    if not cells or max(cells) <= 1:  # nothing to tell, or a file of fractions (said so)
        assert auto.exit_code == 0 and (not cells or "read as fractions" in auto.stderr)
        return
    if auto.exit_code != 0:
        assert_one_line_error(auto, "fractions mixed into percents")
        return
    assert json.loads(auto.stdout) == json.loads(run("rank", path, "--scale", "percent", "--format", "json").stdout)
