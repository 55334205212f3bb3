"""basepick check: the CI gate for new benchmark dumps (exit 0 clean, 1 gate failed, 2 unreadable input)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictor.data import shipped as D
from tests.conftest import assert_one_line_error, write

SHIPPED_V2 = D.benchmarks_dir() / D.V2_FILE
PYTHIA = Path(__file__).parent / "fixtures" / "harness" / "pythia-1b"
HEADER = "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"


def check_json(run, *args) -> tuple[int, dict, str]:
    result = run("check", *args, "--format", "json")
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1
    assert report["passed"] == (result.exit_code == 0)
    if result.exit_code == 1:  # the report on stdout, then one `Error:` line saying why
        lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("note:")]
        assert len(lines) == 1 and lines[0].startswith("Error: check failed: "), result.stderr
    return result.exit_code, report, result.stderr


def v2_rows() -> list[list[str]]:
    with SHIPPED_V2.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return write(path, buf.getvalue())


def test_shipped_snapshot_against_itself_passes(run):
    code, report, _ = check_json(run, SHIPPED_V2)
    assert code == 0 and report["failures"] == []
    assert report["dump"] == {"path": str(SHIPPED_V2), "kind": "leaderboard_v2", "rows": 4576, "models": 4497}
    assert report["validation"]["n_invalid"] == 0 and report["validation"]["duplicate_rows"] == 79
    assert report["diff"]["common"] == 4497 and report["diff"]["n_added"] == report["diff"]["n_removed"] == 0
    assert all(c["changed"] == 0 and c["max_abs_change"] == 0 for c in report["diff"]["changes"].values())
    assert report["top_k"]["changed"] is False
    assert set(report["top_k"]["buckets"]) == {"<3B", "3-6B", ">=6B"}
    assert all(len(b["before"]) == 5 for b in report["top_k"]["buckets"].values())
    assert report["evaluation"]["before"] == report["evaluation"]["after"]


def test_a_third_of_ifeval_up_25_points_fails(run, tmp_path):
    rows = v2_rows()
    j = rows[0].index("evaluations_ifeval_normalized_score")
    for i, row in enumerate(rows[1:]):
        if i % 3 == 0:
            row[j] = repr(float(row[j]) + 25)
    code, report, stderr = check_json(run, write_rows(tmp_path / "v2.csv", rows))
    assert code == 1
    drift = report["diff"]["changes"]["ifeval"]
    assert drift["changed"] == 1499 and drift["max_abs_change"] == pytest.approx(25.0)
    assert any(f.startswith("ifeval: 1499 of 4497 models (33.3%) moved") for f in report["failures"])
    assert report["validation"]["n_invalid"] >= 1499  # normalised no longer matches raw; some exceed 100
    assert "ifeval" in stderr


def test_random_bytes_exit_2(run, tmp_path):
    path = tmp_path / "dump.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(run("check", path), "dump.csv")


def test_harness_folder_passes(run):
    code, report, stderr = check_json(run, PYTHIA)
    assert code == 0 and report["dump"]["kind"] == "harness"
    assert report["diff"]["common"] == 1
    assert report["diff"]["changes"]["bbh"]["max_abs_change"] == 0.0
    assert "Math-Verify" in stderr


def test_feature_dump_problems_fail_the_gate(run, tmp_path):
    dump = write(tmp_path / "f.csv", HEADER
                 + "acme/a-2b,50,20,10,5,5,20,2\n"
                 + "acme/a-2b,51,20,10,5,5,20,2\n"  # same model, different value: a conflict
                 + "acme/b-2b,high,20,10,5,5,20,2\n"  # not a number
                 + "acme/c-2b,150,20,10,5,5,20,2\n")  # out of range
    code, report, _ = check_json(run, dump)
    assert code == 1
    v = report["validation"]
    assert v["n_conflicts"] == 1 and v["conflicts"][0]["rows"] == [2, 3] and v["conflicts"][0]["columns"] == ["ifeval"]
    problems = {(p["row"], p["column"]) for p in v["invalid"]}
    assert problems == {(4, "ifeval"), (5, "ifeval")}
    assert v["n_unknown_ids"] == 3


def test_new_strong_model_enters_the_top_k(run, tmp_path):
    dump = write(tmp_path / "f.csv", HEADER + "acme/super-2b,0.95,0.80,0.70,0.30,0.40,0.70,2\n")
    code, report, stderr = check_json(run, dump, "--top-k", "3")
    assert code == 0, report["failures"]
    assert "read as fractions" in stderr  # a one-row dump of fractions is scaled like `rank` does
    small = report["top_k"]["buckets"]["<3B"]
    assert small["after"][0] == "acme/super-2b" and small["entered"] == ["acme/super-2b"] and len(small["left"]) == 1
    assert report["diff"]["n_added"] == 1 and report["evaluation"]["labelled_models_changed"] == 0


def test_against_another_dump_and_drift_of_a_known_model(run, tmp_path):
    base = write(tmp_path / "base.csv", HEADER + "0-hero/Matter-0.2-7B-DPO,33,10,50,1,6,2,7.2\n")
    new = write(tmp_path / "new.csv", HEADER + "0-hero/Matter-0.2-7B-DPO,33,10,55,1,6,2,7.2\n")
    code, report, _ = check_json(run, base, "--against", base)
    assert code == 0
    code, report, _ = check_json(run, new, "--against", base)
    assert code == 1 and report["diff"]["changes"]["math_lvl5"]["largest"] == [
        {"model_id": "0-hero/Matter-0.2-7B-DPO", "before": 50.0, "after": 55.0}]
    code, report, _ = check_json(run, new, "--against", base, "--tolerance", "6")
    assert code == 0 and report["evaluation"]["labelled_models_changed"] == 0


def test_truncated_leaderboard_dump(run, tmp_path):
    text = SHIPPED_V2.read_text(encoding="utf-8")
    cut = text[: len(text) // 2]
    write(tmp_path / "half.csv", cut[: cut.rindex("\n") + 1])
    code, report, _ = check_json(run, tmp_path / "half.csv")
    assert code == 1 and any("missing from the dump" in f for f in report["failures"])
    write(tmp_path / "mid.csv", cut)  # cut inside a row: unreadable
    assert_one_line_error(run("check", tmp_path / "mid.csv"), "mid.csv", "fields")


def test_fractions_in_a_leaderboard_column(run, tmp_path):
    rows = v2_rows()[:41]
    j = rows[0].index("evaluations_bbh_normalized_score")
    for row in rows[1:]:
        row[j] = repr(float(row[j]) / 100)
    code, report, _ = check_json(run, write_rows(tmp_path / "v2.csv", rows), "--max-removed", "1")
    assert code == 1
    assert any("fractions" in p["problem"] for p in report["validation"]["invalid"])


def test_table_format(run):
    result = run("check", PYTHIA)
    assert result.exit_code == 0
    assert "harness" in result.stdout and "Top 5 per size bucket" in result.stdout and "PASSED" in result.stdout


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("", ["empty"]),
        ("model_id\n", ["no rows"]),
        ("name,ifeval\nacme/x,50\n", ["no 'model_id' column"]),
        ("model_id;ifeval\nacme/x;50\n", ["semicolons"]),
        ("model_id\tifeval,bbh\nacme/x\t50,1\n", ["no 'model_id' column", "tabs"]),  # tabs and commas: not a TSV
        ("model_id,ifeval\nacme/x,50,1\n", ["row 2", "fields"]),
    ],
)
def test_unreadable_dumps(run, tmp_path, content, fragments):
    assert_one_line_error(run("check", write(tmp_path / "d.csv", content)), "d.csv", *fragments)


def test_not_utf8_and_missing(run, tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("model_id\nQw\u00ebn/x\n".encode("latin-1"))
    assert_one_line_error(run("check", path), "not UTF-8")
    assert_one_line_error(run("check", tmp_path / "nope.csv"), "no such file")
    assert_one_line_error(run("check", tmp_path), "no lm-evaluation-harness results")
    assert_one_line_error(run("check", PYTHIA, "--against", tmp_path / "nope.csv"), "no such file")
    assert_one_line_error(run("check", PYTHIA, "--tolerance", "-1"), "--tolerance")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=400),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=200)
    .filter(lambda s: "model_id" not in s),
))
def test_garbage_is_exit_2(run, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("c") / "dump.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    result = run("check", path)
    if b"model_id" in path.read_bytes():  # random bytes that happen to spell the header
        return
    assert_one_line_error(result)


cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["", "nan", "inf", "-inf", "1e400", "50", "0.5", "n/a", "×"]),
)
odd_id = st.one_of(st.sampled_from(["Qwen/Qwen2.5-7B-Instruct", "acme/x", "ünï/cødé-✓", "a" * 300, "x\u202ey", "", " "]),
                   st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1,
                           max_size=30))  # NUL: binary, exit 2; lone surrogates cannot be written as UTF-8


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(odd_id, st.lists(cell, min_size=7, max_size=7)), min_size=1, max_size=3))
def test_well_formed_feature_dumps_pass_or_fail_the_gate(run, tmp_path_factory, rows):
    """Any well-formed feature CSV — odd Unicode ids, NaN/inf, huge values — gives a report and exit 0 or 1."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)  # minimal quoting leaves a bare \r: a line break
    writer.writerow(HEADER.strip().split(","))
    writer.writerows([[model_id, *cells] for model_id, cells in rows])
    path = tmp_path_factory.mktemp("c") / "dump.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    result = run("check", path, "--format", "json")
    if not any(model_id.strip() and any(c.strip() for c in [model_id, *cells]) for model_id, cells in rows):
        assert result.exit_code in (0, 1, 2)
        return
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    report = json.loads(result.stdout)
    assert report["passed"] == (result.exit_code == 0)
    assert "Traceback" not in result.output


def test_leaderboard_rows_the_row_rule_cannot_separate_conflict(run, tmp_path):
    rows = v2_rows()[:41]
    header = rows[0]
    twin = list(rows[1])
    twin[header.index("id")] = twin[header.index("id")] + "x"  # same flags, dates, precision: only the id differs
    j = header.index("evaluations_gpqa_normalized_score")
    twin[j] = "9.5"
    twin[header.index("evaluations_gpqa_value")] = repr(0.25 + 0.75 * 0.095)
    code, report, _ = check_json(run, write_rows(tmp_path / "v2.csv", rows + [twin]), "--max-removed", "1")
    assert code == 1
    assert report["validation"]["conflicts"] == [{"model_id": rows[1][header.index("model_name")],
                                                  "rows": [2, 42], "columns": ["gpqa"]}]


def test_failing_report_as_a_table(run, tmp_path):
    dump = write(tmp_path / "f.csv", HEADER + "acme/x-2b,150,20,10,5,5,20,2\n")
    result = run("check", dump)
    assert result.exit_code == 1
    assert "FAILED: 1 invalid value(s)" in result.stdout and "row 2 acme/x-2b ifeval" in result.stdout
    assert result.stderr.startswith("Error: check failed: 1 invalid value(s)") and result.stderr.count("\n") == 1


def test_broken_harness_results_exit_2(run, tmp_path):
    (tmp_path / "r").mkdir()
    write(tmp_path / "r" / "results_1.json", '{"results": {"leaderboard_gpqa": {"acc_norm,none": "x"}}, "model_name": "a/b"}')
    assert_one_line_error(run("check", tmp_path / "r"), "results_1.json", "not an accuracy")
    write(tmp_path / "one.json", "{")
    assert_one_line_error(run("check", tmp_path / "one.json"), "one.json", "not valid JSON")


BAD_CELLS = st.sampled_from(["nan", "inf", "-inf", "1e400", "-3", "101", "1e308", "high", "", "5 0", "0x10"])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(1, 30), st.sampled_from(["ifeval", "bbh", "math", "gpqa", "musr", "mmlu_pro"]),
                                BAD_CELLS), min_size=1, max_size=5, unique_by=lambda e: e[:2]))
def test_bad_cells_in_a_leaderboard_dump_are_reported(run, tmp_path_factory, edits):
    rows = v2_rows()[:31]
    for r, task, text in edits:
        rows[r][rows[0].index(f"evaluations_{task}_normalized_score")] = text
    path = write_rows(tmp_path_factory.mktemp("c") / "v2.csv", rows)
    code, report, _ = check_json(run, path, "--max-removed", "1")
    assert code == 1
    flagged = {(p["row"], p["column"]) for p in report["validation"]["invalid"]}
    for r, task, _ in edits[:3]:
        assert (r + 1, f"evaluations_{task}_normalized_score") in flagged or report["validation"]["n_invalid"] > 10


# Counting on one basis; sizes that contradict the name (issue 13, item 5)


def leaderboard_without(tmp_path: Path, name: str, drop) -> Path:
    rows = v2_rows()
    j = rows[0].index("model_name")
    return write_rows(tmp_path / name, [rows[0]] + [r for r in rows[1:] if not drop(r[j])])


def test_against_counts_added_removed_and_in_both_on_one_basis(run, tmp_path):
    rows = v2_rows()
    ids = sorted({r[rows[0].index("model_name")] for r in rows[1:]})
    old = leaderboard_without(tmp_path, "old.csv", lambda m: m >= ids[4041])  # 4,041 models
    new = leaderboard_without(tmp_path, "new.csv", lambda m: m in ids[:3])  # 4,494 models: 3 gone, 456 new
    _, report, _ = check_json(run, new, "--against", old, "--max-removed", "1")
    d = report["diff"]
    assert (d["dump_models"], d["current_models"]) == (4494, 4041)
    assert (d["common"], d["n_added"], d["n_removed"]) == (4038, 456, 3)
    assert d["common"] + d["n_added"] == d["dump_models"] and d["common"] + d["n_removed"] == d["current_models"]
    table = run("check", new, "--against", old, "--max-removed", "1")
    assert "models: 4038 in both, 456 added, 3 removed (dump 4494 = in both + added; current pool 4041 = in both + removed)" \
        in table.stdout


def test_check_lists_sizes_that_contradict_the_name(run, tmp_path):
    code, report, stderr = check_json(run, SHIPPED_V2)
    v = report["validation"]
    assert code == 0 and v["n_params_contradicting_name"] == 33  # unambiguous names stating >= 6B, under 60% of it
    listed = v["params_contradicting_name"]
    assert listed[0]["model_id"] == "ContactDoctor/Bio-Medical-Llama-3-8B" and listed[0]["params_b"] == 4.015
    assert all(i["stated"] >= 6 and i["params_b"] < 0.6 * i["stated"] for i in listed) and len(listed) == 10
    assert "33 model(s) record params_b under 60% of the size their name states" in stderr
    dump = write(tmp_path / "f.csv", HEADER + "T145/ZEUS-8B-V15,50,30,10,5,8,30,4.015\nacme/fine-8B,50,30,10,5,8,30,8.03\n")
    code, report, stderr = check_json(run, dump)
    assert [i["model_id"] for i in report["validation"]["params_contradicting_name"]] == ["T145/ZEUS-8B-V15"]


def test_shipped_sizes_follow_the_name_so_the_pool_buckets_them_right(run):
    snap = D.load_snapshot()
    assert snap.row("T145/ZEUS-8B-V15")["params_b"] == 8.0  # the leaderboard records 4.015 (4-bit export)
    assert snap.row("meta-llama/Llama-3.1-8B-Instruct")["params_b"] == 8.03  # agrees with its name: kept
    assert snap.row("allenai/OLMoE-1B-7B-0924")["params_b"] == pytest.approx(6.919)  # two sizes named: not touched
    assert snap.row("DeepMount00/Llama-3.1-8b-Ita")["params_b"] == 8.0  # no leaderboard size: the name's
    assert snap.row("DrNicefellow/Mistral-1-from-Mixtral-8x7B-v0.1")["params_b"] == 7.0  # v1-only: as recorded
    pool = {c["model_id"]: c for c in json.loads(run("rank", "--pool", "leaderboard", "--format", "json").stdout)["candidates"]}
    assert pool["T145/ZEUS-8B-V15"]["size_bucket"] == ">=6B" and pool["FINGU-AI/Ultimos-32B"]["params_b"] == 32.0


def test_leaderboard_rows_of_fractions_are_invalid(run, tmp_path):
    rows = v2_rows()
    cols = [rows[0].index(c) for c in rows[0] if c.endswith("_normalized_score")]
    for j in cols:
        rows[1][j] = str(float(rows[1][j]) / 100 if float(rows[1][j]) > 1 else 0.5)
    code, report, _ = check_json(run, write_rows(tmp_path / "v2.csv", rows))
    assert code == 1 and any(p["row"] == 2 and "fractions among the leaderboard's points" in p["problem"]
                             for p in report["validation"]["invalid"])


def test_check_says_where_the_numbers_came_from(run, tmp_path):
    """lm-eval results and ingested feature rows: how lm-eval ran them, and whether that is the leaderboard's way."""
    harness = Path(__file__).parent / "fixtures" / "harness" / "pythia-1b"
    out = json.loads(run("check", harness, "--format", "json").stdout)
    assert out["provenance"]["source"] == "lm-evaluation-harness results"
    assert out["provenance"]["lm_eval_rows"] == 1 and out["provenance"]["unlike_leaderboard"] == 0
    (row,) = out["provenance"]["rows"]
    assert row["model_id"] == "EleutherAI/pythia-1b" and row["lm_eval_settings"] == "leaderboard"
    features = tmp_path / "f.csv"
    assert run("ingest", harness, "--out", features).exit_code == 0
    result = run("check", features)
    assert "not checked" not in result.stderr  # the lm_eval_* columns are known
    assert "EleutherAI/pythia-1b: lm-eval git 80c5a43, leaderboard settings" in result.stdout
    assert json.loads(run("check", features, "--format", "json").stdout)["provenance"]["rows"][0]["lm_eval_dtype"] == "float16"
