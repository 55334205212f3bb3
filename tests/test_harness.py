"""How an lm-eval run was made, checked against the Open LLM Leaderboard's settings: notes, --strict,
the lm_eval_* columns, and the bad inputs that are one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictor.data import harness_settings as HS
from predictor.data import ingest as I
from predictor.data import shipped as D
from tests.conftest import REPO, assert_one_line_error, pythia_v2_and_v1_runs, write

PYTHIA = Path(__file__).parent / "fixtures" / "harness" / "pythia-1b"
V1_RUN = Path(__file__).parent / "fixtures" / "harness" / "v1-run"
MATH_NOTE = "Math-Verify"


def results(tmp_path: Path, *edits, name: str = "results") -> Path:
    """A copy of the leaderboard's pythia-1b results folder with each ``edit(doc)`` applied to its JSON."""
    folder = tmp_path / name
    shutil.copytree(PYTHIA, folder)
    target = next(folder.rglob("results_*.json"))
    doc = json.loads(target.read_text(encoding="utf-8"))
    for edit in edits:
        edit(doc)
    target.write_text(json.dumps(doc), encoding="utf-8")
    return folder


def model(name: str):
    def edit(doc):
        doc["model_name"] = name
        doc["config"]["model_args"] = doc["config"]["model_args"].replace("EleutherAI/pythia-1b", name)
    return edit


def template(multiturn: bool = True):
    def edit(doc):
        doc["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        doc["chat_template_sha"] = "abc123"
        doc["fewshot_as_multiturn"] = multiturn
    return edit


def tasks_of(prefix: str, key: str, value):
    def edit(doc):
        for task in doc[key]:
            if task.startswith(prefix) and task != prefix.rstrip("_"):
                doc[key][task] = value
    return edit


def upstream(doc):
    """What lm-eval 0.4.12 writes: its version, its task versions, Math-Verify's exact_match_original."""
    doc["lm_eval_version"] = "0.4.12"
    for task in doc["versions"]:
        doc["versions"][task] = {"leaderboard_bbh": 1.0, "leaderboard_ifeval": 3.0, "leaderboard_math": 3.0}.get(
            next((p for p in ("leaderboard_bbh", "leaderboard_ifeval", "leaderboard_math") if task.startswith(p)), ""),
            doc["versions"][task])
    for task, entry in doc["results"].items():
        if task.startswith("leaderboard_math"):
            entry["exact_match_original,none"] = entry.get("exact_match,none", 0.0)


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("note:") and "wrote" not in line]


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {r["model_id"]: r for r in csv.DictReader(f)}


# --------------------------------------------------------------------------------------------------
# The leaderboard's own run and its settings


def test_the_leaderboards_pythia_run_has_its_settings(run, tmp_path):
    out = tmp_path / "f.csv"
    result = run("ingest", PYTHIA, "--out", out, "--strict")
    assert result.exit_code == 0, result.stderr
    assert [n for n in notes(result) if MATH_NOTE not in n] == []  # no settings note; only MATH's scoring caveat
    row = rows(out)["EleutherAI/pythia-1b"]
    assert row["lm_eval_settings"] == "leaderboard"
    assert (row["lm_eval_version"], row["lm_eval_backend"], row["lm_eval_dtype"]) == ("git 80c5a43", "hf", "float16")
    assert (row["lm_eval_chat_template"], row["lm_eval_fewshot_as_multiturn"]) == ("no", "no")
    assert row["lm_eval_n_shot"] == "ifeval=0 bbh=3 math_lvl5=4 gpqa=0 musr=0 mmlu_pro=5"
    assert row["lm_eval_task_versions"] == "ifeval=2.0 bbh=0.0 math_lvl5=2.0 gpqa=1.0 musr=1.0 mmlu_pro=0.1"


def test_a_current_lm_eval_run_of_a_chat_model_matches_with_no_note(run, tmp_path):
    """lm-eval 0.4.12, chat template and few-shot as turns on an instruct model: what the script runs."""
    out = tmp_path / "f.csv"
    result = run("ingest", results(tmp_path, model("acme/tiny-Instruct"), template(), upstream), "--out", out, "--strict")
    assert result.exit_code == 0, result.stderr
    assert notes(result) == []  # Math-Verify scoring (3.0) included
    row = rows(out)["acme/tiny-Instruct"]
    assert (row["lm_eval_settings"], row["lm_eval_version"], row["lm_eval_chat_template"],
            row["lm_eval_fewshot_as_multiturn"]) == ("leaderboard", "0.4.12", "yes", "yes")


@pytest.mark.parametrize("edits, setting, fragments", [
    ((model("acme/tiny-Instruct"),), "chat_template", ["not applied", "IFEval", "+16.8"]),
    ((model("acme/tiny-Base"), template()), "chat_template", ["applied to acme/tiny-Base", "base models without it"]),
    ((model("acme/tiny-Instruct"), template(multiturn=False)), "fewshot_as_multiturn", ["bbh, math_lvl5, mmlu_pro"]),
    ((tasks_of("leaderboard_bbh_", "n-shot", 0),), "n_shot", ["bbh 0 (leaderboard 3)"]),
    ((lambda doc: doc["versions"].update(leaderboard_mmlu_pro=9.9),), "task_version", ["mmlu_pro 9.9"]),
])
def test_a_setting_unlike_the_leaderboards_is_a_note_and_strict_refuses_it(run, tmp_path, edits, setting, fragments):
    folder = results(tmp_path, *edits)
    out = tmp_path / "f.csv"
    result = run("ingest", folder, "--out", out)
    assert result.exit_code == 0, result.stderr
    (line,) = [n for n in notes(result) if f": {setting}: " in n]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert next(iter(rows(out).values()))["lm_eval_settings"] == f"differs: {setting}"
    strict = run("ingest", folder, "--out", tmp_path / "g.csv", "--strict")
    assert_one_line_error(strict, setting, "--strict")
    assert not (tmp_path / "g.csv").exists()


def test_template_effect_is_what_the_snapshot_shows():
    """TEMPLATE_EFFECT's figures: the 23 models the shipped leaderboard export holds with and without the template."""
    with (D.benchmarks_dir() / D.V2_FILE).open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    by: dict[str, dict[str, dict]] = {}
    for r in table:
        by.setdefault(r["model_name"], {})[r["model_has_chat_template"]] = r
    both = [v for v in by.values() if len(v) == 2]
    assert len(both) == 23

    def moves(task: str) -> list[float]:
        col = f"evaluations_{task}_normalized_score"
        return [float(v["TRUE"][col]) - float(v["FALSE"][col]) for v in both]

    ifeval = moves("ifeval")
    assert f"+{statistics.median(ifeval):.1f}" in HS.TEMPLATE_EFFECT
    assert f"({min(ifeval):.1f} to +{max(ifeval):.1f})" in HS.TEMPLATE_EFFECT
    assert f"MuSR {statistics.median(moves('musr')):.1f}" in HS.TEMPLATE_EFFECT
    assert f"GPQA {statistics.median(moves('gpqa')):.1f}" in HS.TEMPLATE_EFFECT


@pytest.mark.parametrize("model_id, chat", [
    ("Qwen/Qwen2.5-7B-Instruct", True), ("google/gemma-3-12b-it", True), ("internlm/internlm2_5-7b-chat", True),
    ("allenai/OLMo-2-1124-7B-SFT", True), ("allenai/OLMo-2-1124-7B-DPO", True), ("Qwen/Qwen3-8B-Base", False),
    ("google/gemma-3-12b-pt", False), ("HuggingFaceTB/SmolLM3-3B-Base", False), ("Qwen/Qwen3-8B", None),
    ("meta-llama/Llama-3.1-8B", None), ("acme/italian-base-instruct", None), ("acme/items-7b", None),
])
def test_chat_model_reads_the_stage_from_the_id(model_id, chat):
    assert HS.chat_model(model_id) is chat


def test_template_for_prefers_post_training():
    assert HS.template_for("Qwen/Qwen3-8B", 2.0) == (True, "its post_training")
    assert HS.template_for("acme/x-Instruct", 0.0) == (False, "its post_training")
    assert HS.template_for("acme/x-Instruct", float("nan")) == (True, "its id")
    chat, why = HS.template_for("Qwen/Qwen3-8B", float("nan"))
    assert chat and why.startswith("assumed")


# --------------------------------------------------------------------------------------------------
# Nothing lost: a missing metric is a note naming the task and the metric


def test_gpqa_with_only_acc_is_a_note_not_a_silent_drop(run, tmp_path):
    def only_acc(doc):
        for key in ("results", "groups"):
            doc[key]["leaderboard_gpqa"] = {"acc,none": 0.3, "alias": "leaderboard_gpqa"}
        for task in [t for t in doc["results"] if t.startswith("leaderboard_gpqa_")]:
            del doc["results"][task]

    folder = results(tmp_path, only_acc)
    out = tmp_path / "f.csv"
    result = run("ingest", folder, "--out", out)
    assert result.exit_code == 0, result.stderr
    (line,) = [n for n in notes(result) if "leaderboard_gpqa" in n]
    assert "no 'acc_norm,none'" in line and "acc,none" in line and "gpqa left missing" in line
    row = rows(out)["EleutherAI/pythia-1b"]
    assert row["gpqa"] == "" and row["ifeval"] != ""
    assert_one_line_error(run("ingest", folder, "--out", tmp_path / "g.csv", "--strict"), "leaderboard_gpqa", "acc_norm,none")


def test_a_bbh_subtask_without_acc_norm_is_a_note(run, tmp_path):
    def no_acc_norm(doc):
        doc["results"]["leaderboard_bbh_navigate"] = {"acc,none": 0.5, "alias": "navigate"}

    result = run("ingest", results(tmp_path, no_acc_norm), "--out", tmp_path / "f.csv")
    assert result.exit_code == 0, result.stderr
    assert any("leaderboard_bbh_navigate" in n and "acc_norm,none" in n and "bbh left missing" in n for n in notes(result))
    assert rows(tmp_path / "f.csv")["EleutherAI/pythia-1b"]["bbh"] == ""


def test_a_v1_task_without_its_metric_is_a_note(run, tmp_path):
    folder = tmp_path / "v1"
    shutil.copytree(V1_RUN, folder)
    target = next(folder.rglob("results_*.json"))
    doc = json.loads(target.read_text(encoding="utf-8"))
    doc["results"]["gsm8k"] = {"exact_match,flexible-extract": 0.3, "alias": "gsm8k"}
    target.write_text(json.dumps(doc), encoding="utf-8")
    result = run("ingest", folder, "--out", tmp_path / "f.csv")
    assert result.exit_code == 0, result.stderr
    assert any("gsm8k" in n and "strict-match" in n and "flexible-extract" in n for n in notes(result))


# --------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written; or a note where the numbers stay usable


def test_one_benchmark_from_two_lm_eval_versions_is_an_error(run, tmp_path):
    newer = results(tmp_path, upstream, name="newer")
    both = tmp_path / "both"
    shutil.copytree(PYTHIA, both / "a")
    shutil.copytree(newer, both / "b")
    assert_one_line_error(run("ingest", both, "--out", tmp_path / "f.csv"), "git 80c5a43", "0.4.12", "one run per benchmark")
    assert not (tmp_path / "f.csv").exists()


def test_different_benchmarks_from_two_lm_eval_versions_are_a_note(run, tmp_path):
    both = pythia_v2_and_v1_runs(tmp_path / "both")
    result = run("ingest", both, "--out", tmp_path / "f.csv")
    assert result.exit_code == 0, result.stderr
    assert any("lm-eval git 80c5a43 and git 4f8a43a" in n for n in notes(result))
    assert rows(tmp_path / "f.csv")["EleutherAI/pythia-1b"]["lm_eval_version"] == "git 80c5a43 + git 4f8a43a"


def test_model_id_unlike_the_files_is_an_error_but_names_a_local_run(run, tmp_path):
    assert_one_line_error(run("ingest", PYTHIA, "--out", tmp_path / "f.csv", "--model-id", "acme/other"),
                          "EleutherAI/pythia-1b", "acme/other")
    assert not (tmp_path / "f.csv").exists()
    assert run("ingest", PYTHIA, "--out", tmp_path / "f.csv", "--model-id", "eleutherai/Pythia-1B").exit_code == 0
    local = results(tmp_path, model("/models/ckpt-1000"), name="local")
    assert run("ingest", local, "--out", tmp_path / "g.csv", "--model-id", "acme/ckpt").exit_code == 0
    assert "acme/ckpt" in rows(tmp_path / "g.csv")


@pytest.mark.parametrize("edit, fragment", [
    (lambda doc: doc["config"].update(limit=10), "config.limit is 10"),
    (lambda doc: doc["config"].update(limit=0.1), "config.limit is 0.1"),
    (lambda doc: doc["n-samples"]["leaderboard_mmlu_pro"].update(effective=100), "leaderboard_mmlu_pro evaluated 100"),
])
def test_a_partial_run_is_an_error(run, tmp_path, edit, fragment):
    assert_one_line_error(run("ingest", results(tmp_path, edit), "--out", tmp_path / "f.csv"), "partial run", fragment)
    assert not (tmp_path / "f.csv").exists()


def test_results_older_than_0_4_are_refused_saying_why(run, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    doc = {"results": {"arc_challenge": {"acc": 0.4, "acc_stderr": 0.01, "acc_norm": 0.43, "acc_norm_stderr": 0.01}},
           "versions": {"arc_challenge": 0}, "config": {"model": "hf-causal-experimental",
                                                        "model_args": "pretrained=acme/old", "num_fewshot": 25}}
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert_one_line_error(run("ingest", folder, "--out", tmp_path / "f.csv"), "older than 0.4", "'acc'", "lm-eval >= 0.4.9")


LABELS = "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\nacme/x,regression,HelpSteer2,rewardbench,90,60,80,85,78.75\n"


@pytest.mark.parametrize("content, fragment", [
    (LABELS, "'recipe'"),
    ("model_id,lineage,ifeval\nacme/x,acme,50\n", "'lineage'"),
])
def test_out_refuses_a_file_that_is_not_a_feature_table(run, tmp_path, content, fragment):
    out = write(tmp_path / "labels.csv", content)
    assert_one_line_error(run("ingest", PYTHIA, "--out", out), "not a feature table", fragment, "new file")
    assert out.read_text(encoding="utf-8") == content


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_out_keeps_any_table_with_a_column_ingest_does_not_know(run, tmp_path_factory, extra):
    known = {"model_id", "scale", *D.F.SPECS, *D.F.DERIVED, *HS.PROVENANCE_COLUMNS}
    if extra in known or extra.startswith("presence_") or D.F.is_probe_extra(extra):
        return
    folder = tmp_path_factory.mktemp("o")
    content = f"model_id,{extra}\nacme/x,1\n"
    out = write(folder / "t.csv", content)
    result = run("ingest", PYTHIA, "--out", out)
    assert_one_line_error(result, "not a feature table")
    assert out.read_text(encoding="utf-8") == content and [p.name for p in folder.iterdir()] == ["t.csv"]


def test_ingest_api_strict_raises_and_writes_nothing(tmp_path):
    folder = results(tmp_path, model("acme/tiny-Instruct"))
    with pytest.raises(I.DataError, match="chat_template"):
        I.ingest(folder, tmp_path / "f.csv", strict=True)
    assert not (tmp_path / "f.csv").exists()


# --------------------------------------------------------------------------------------------------
# The example's published figures stay what the shipped snapshot says


def test_example_readme_shows_what_eval_time_computes():
    import runpy

    table = runpy.run_path(str(REPO / "examples" / "lm-eval" / "eval_time.py"))["table"]()
    readme = (REPO / "examples" / "lm-eval" / "README.md").read_text(encoding="utf-8")
    for line in table:
        if line:
            assert line in readme, line
