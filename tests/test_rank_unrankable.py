"""`basepick rank` with candidates that lack the method's inputs: the others are ranked, these listed
with the command that gets their features; the example script closes the loop."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from predictor import api
from predictor.errors import DataError
from tests.conftest import EXAMPLES, REPO, assert_one_line_error, rank_json, write

MIXED = "model_id,post_training\nQwen/Qwen2.5-7B-Instruct,\nQwen/Qwen3-8B,instruct\nacme/new-7b-Base,\nacme/x,base\n"
PYTHIA_JSON = next((Path(__file__).parent / "fixtures" / "harness" / "pythia-1b").rglob("results_*.json"))


def test_ranks_what_it_can_and_lists_the_rest_with_their_command(run, tmp_path):
    path = write(tmp_path / "c.csv", MIXED)
    out = rank_json(run, path)
    assert [c["model_id"] for c in out["candidates"]] == ["Qwen/Qwen2.5-7B-Instruct"]
    listed = {u["model_id"]: u for u in out["unrankable"]}
    assert list(listed) == ["Qwen/Qwen3-8B", "acme/new-7b-Base", "acme/x"]
    for u in listed.values():
        assert u["missing"] == ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]
        assert "not in the shipped leaderboard snapshot" in u["reason"]
        assert u["command"].startswith("bash examples/lm-eval/leaderboard_v2.sh ")
        assert u["command"].endswith(f"--features {path} {u['model_id']}")
    assert (listed["Qwen/Qwen3-8B"]["chat_template"], listed["Qwen/Qwen3-8B"]["chat_template_why"]) == (True, "its post_training")
    assert (listed["acme/new-7b-Base"]["chat_template"], listed["acme/new-7b-Base"]["chat_template_why"]) == (False, "its id")
    assert listed["acme/x"]["chat_template"] is False and "--chat-template no" in listed["acme/x"]["command"]


def test_table_and_csv_carry_the_same_list(run, tmp_path):
    path = write(tmp_path / "c.csv", MIXED)
    as_json = rank_json(run, path)
    table = run("rank", path)
    assert table.exit_code == 0 and "3 candidate(s) lack every input" in table.stderr
    assert "Not ranked: 3 candidate(s)" in table.stdout
    for u in as_json["unrankable"]:
        assert u["command"] in table.stdout.splitlines()[table.stdout.splitlines().index(
            next(line for line in table.stdout.splitlines() if line.startswith(u["model_id"] + ":"))) + 1]
    rows = list(csv.DictReader(io.StringIO(run("rank", path, "--format", "csv").stdout)))
    assert [r["status"] for r in rows] == ["ranked", "unrankable", "unrankable", "unrankable"]
    assert [r["command"] for r in rows[1:]] == [u["command"] for u in as_json["unrankable"]]
    assert [r["model_id"] for r in rows[1:]] == [u["model_id"] for u in as_json["unrankable"]]
    assert rows[1]["rank"] == "" and rows[1]["missing"] == "ifeval;bbh;math_lvl5;gpqa;musr;mmlu_pro"


def test_no_rankable_candidate_prints_the_list_and_exits_2(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id\nQwen/Qwen3-8B\nHuggingFaceTB/SmolLM3-3B\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["candidates"] == [] and [u["model_id"] for u in out["unrankable"]] == ["Qwen/Qwen3-8B", "HuggingFaceTB/SmolLM3-3B"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "no candidate can be ranked" in errors[0] and "Traceback" not in result.output
    assert "Not ranked: 2" in run("rank", path).stdout


def test_strict_refuses_any_unrankable_candidate(run, tmp_path):
    path = write(tmp_path / "c.csv", MIXED)
    assert_one_line_error(run("rank", path, "--strict"), "'Qwen/Qwen3-8B'", "--strict", "leaderboard_v2.sh")
    assert rank_json(run, EXAMPLES / "candidates.csv", "--strict")["unrankable"] == []  # nothing to refuse


def test_max_params_applies_before_the_split(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id\nQwen/Qwen2.5-0.5B-Instruct\nQwen/Qwen3-14B\n")
    out = rank_json(run, path, "--max-params", "8")
    assert out["unrankable"] == [] and len(out["candidates"]) == 1


def test_api_returns_the_list_and_strict_raises():
    records = [{"model_id": "Qwen/Qwen2.5-7B-Instruct"}, {"model_id": "Qwen/Qwen3-8B"}]
    out = api.rank(records)
    assert [u["model_id"] for u in out["unrankable"]] == ["Qwen/Qwen3-8B"]
    assert "--features features.csv" in out["unrankable"][0]["command"]
    assert any("lack every input" in n for n in out["notes"])
    with pytest.raises(DataError, match="Qwen3-8B"):
        api.rank(records, strict=True)
    empty = api.rank([{"model_id": "Qwen/Qwen3-8B"}])  # the library returns the list; the CLI exits 2
    assert empty["candidates"] == [] and len(empty["unrankable"]) == 1


def test_the_2026_example_ranks_the_snapshots_and_lists_the_rest(run, tmp_path):
    path = EXAMPLES / "candidates_2026.csv"
    out = rank_json(run, path)
    assert sorted(c["model_id"] for c in out["candidates"]) == [
        "allenai/OLMo-2-1124-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.2-3B-Instruct"]
    assert len(out["unrankable"]) == 7 and all(u["chat_template"] for u in out["unrankable"])
    assert all(not u["chat_template_why"].startswith("assumed") for u in out["unrankable"])
    provenance = (EXAMPLES / "candidates_2026.md").read_text(encoding="utf-8")
    for model_id in [c["model_id"] for c in out["candidates"]] + [u["model_id"] for u in out["unrankable"]]:
        assert model_id in provenance  # every row's cells are accounted for


# --------------------------------------------------------------------------------------------------
# The loop: rank lists a command, the command (with a stand-in lm_eval) fills the file, rank ranks it


STUB = '''#!{python}
"""Stands in for lm_eval: writes the pythia-1b leaderboard results for the model it is asked about."""
import json, sys
args = sys.argv[1:]
value = lambda flag: args[args.index(flag) + 1]
name = value("--model_args").split(",")[0].removeprefix("pretrained=")
doc = json.load(open({fixture!r}, encoding="utf-8"))
doc["model_name"] = name
doc["config"]["model_args"] = value("--model_args")
doc["config"]["model"] = value("--model")
if "--apply_chat_template" in args:
    doc["chat_template"], doc["chat_template_sha"] = "{{{{ messages }}}}", "0f"
doc["fewshot_as_multiturn"] = "--fewshot_as_multiturn" in args
folder = value("--output_path") + "/" + name.replace("/", "__")
import os; os.makedirs(folder, exist_ok=True)
json.dump(doc, open(folder + "/results_2026-12-01T00-00-00.json", "w"))
open({log!r}, "a").write(" ".join(args) + "\\n")
'''


def test_the_listed_command_produces_features_rank_then_uses(run, tmp_path):
    basepick = Path(sys.executable).parent / "basepick"
    if shutil.which("bash") is None or not basepick.exists():
        pytest.skip("needs bash and the basepick entry point of this environment")
    stub, log = tmp_path / "lm_eval", tmp_path / "lm_eval.log"
    stub.write_text(STUB.format(python=sys.executable, fixture=str(PYTHIA_JSON), log=str(log)), encoding="utf-8")
    stub.chmod(0o755)
    candidates = write(tmp_path / "c.csv", "model_id\nQwen/Qwen2.5-7B-Instruct\nacme/new-1b-Instruct\n")
    (listed,) = rank_json(run, candidates)["unrankable"]
    env = {**os.environ, "LM_EVAL": str(stub), "BASEPICK": str(basepick)}
    work = tmp_path / "work"  # the command names the script relative to a basepick checkout
    work.mkdir()
    (work / "examples").symlink_to(REPO / "examples")
    done = subprocess.run(listed["command"], shell=True, cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert log.read_text().split() == [
        "--model", "hf", "--model_args", "pretrained=acme/new-1b-Instruct,revision=main,dtype=bfloat16",
        "--tasks", "leaderboard", "--batch_size", "auto", "--output_path", "lm-eval-results",
        "--apply_chat_template", "--fewshot_as_multiturn"]
    assert (work / "lm-eval-results" / "acme__new-1b-Instruct").is_dir()
    again = rank_json(run, candidates)
    assert again["unrankable"] == []
    ranked = {c["model_id"]: c for c in again["candidates"]}
    assert ranked["acme/new-1b-Instruct"]["features"]["given"] == ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]
    assert ranked["acme/new-1b-Instruct"]["harness"]["lm_eval_settings"] == "leaderboard"
    assert ranked["acme/new-1b-Instruct"]["harness"]["lm_eval_chat_template"] == "yes"
    assert ranked["Qwen/Qwen2.5-7B-Instruct"]["harness"] is None


@pytest.mark.parametrize("args, fragment", [
    (["Qwen/Qwen3-8B"], "--chat-template yes"),
    (["--chat-template", "maybe", "Qwen/Qwen3-8B"], "--chat-template yes"),
    (["--chat-template", "yes"], "Hugging Face id"),
    (["--chat-template", "yes", "--backend", "tgi", "a/b"], "--backend is hf or vllm"),
    (["--chat-template", "yes", "a/b", "c/d"], "one MODEL_ID"),
    (["--chat-template"], "needs a value"),
    (["--bogus", "a/b"], "unknown option"),
])
def test_the_script_refuses_bad_arguments_in_one_line(args, fragment):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    done = subprocess.run(["bash", str(EXAMPLES / "lm-eval" / "leaderboard_v2.sh"), *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: ") and fragment in line


def test_the_script_dry_run_shows_the_leaderboards_command():
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    done = subprocess.run(["bash", str(EXAMPLES / "lm-eval" / "leaderboard_v2.sh"), "--dry-run", "--chat-template", "no",
                           "--backend", "vllm", "--dtype", "float16", "--features", "my file.csv", "EleutherAI/pythia-1b"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "lm_eval --model vllm --model_args pretrained=EleutherAI/pythia-1b,revision=main,dtype=float16 --tasks leaderboard "
        "--batch_size auto --output_path lm-eval-results",
        "basepick ingest lm-eval-results/EleutherAI__pythia-1b --out 'my file.csv' --model-id EleutherAI/pythia-1b",
    ]
    readme = (EXAMPLES / "lm-eval" / "README.md").read_text(encoding="utf-8")
    assert ("lm_eval --model hf --model_args pretrained=Qwen/Qwen3-8B,revision=main,dtype=bfloat16 --tasks leaderboard "
            "--batch_size auto --output_path lm-eval-results --apply_chat_template --fewshot_as_multiturn") in readme
