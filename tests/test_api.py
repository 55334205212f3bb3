"""The Python API (issue 13, item 9): rank, plan, fit and evaluate on a CSV path or a list of dicts, returning plain
data that equals what the CLI prints (both go through predictor.api)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from predictor import api
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.errors import ArtifactError, DataError
from predictor.models import artifact
from tests.conftest import EXAMPLES, rank_json, write

SEED = D.benchmarks_dir() / D.LABELS_FILE


def plain(value) -> bool:
    """Only dicts, lists, str, int, float, bool and None: what json and a notebook handle without basepick."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_rank_on_a_csv_path_is_the_cli_json(run):
    out = api.rank(EXAMPLES / "candidates.csv")
    chosen = artifact.summary(D.shipped_predictor_dir())["models"]["regression/score"]["method"]
    assert plain(out) and out["method"] == chosen
    choice, extrapolate = out.pop("notes")
    assert choice.startswith(f"ranking by {chosen}, chosen by leave-lineage-out")
    assert extrapolate == ("3 candidate(s) lie outside the labelled size range 0.49-10.3B: their predictions "
                           "extrapolate (marked '*')")
    assert out == rank_json(run, EXAMPLES / "candidates.csv")


def test_rank_widens_intervals_for_missing_inputs_as_the_cli(run, tmp_path):
    full = {"model_id": "acme/full-7b", "ifeval": 70, "bbh": 30, "math_lvl5": 15, "gpqa": 8, "musr": 10,
            "mmlu_pro": 30, "params_b": 7}
    records = [full, {**full, "model_id": "acme/no-mmlu-pro-7b", "mmlu_pro": None}]
    out = api.rank(records)
    by_id = {c["model_id"]: c for c in out["candidates"]}
    assert by_id["acme/full-7b"]["interval_widening"] == 1.0 < by_id["acme/no-mmlu-pro-7b"]["interval_widening"]
    width = {i: c["high"] - c["low"] for i, c in by_id.items()}
    assert width["acme/no-mmlu-pro-7b"] > width["acme/full-7b"]
    assert any("1 candidate(s) lack features the model uses" in n for n in out.pop("notes"))
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"
                 "acme/full-7b,70,30,15,8,10,30,7\nacme/no-mmlu-pro-7b,70,30,15,8,10,,7\n")
    assert out == rank_json(run, path)


def test_plan_on_dicts_equals_the_cli(run, tmp_path):
    ids = ["Qwen/Qwen2.5-7B-Instruct", "google/gemma-2-9b-it", "meta-llama/Llama-3.1-8B-Instruct",
           "Qwen/Qwen2.5-3B-Instruct"]
    measured = {"model_id": ids[0], "recipe": "regression", "train_data": "helpsteer2", "eval": "rewardbench-v1",
                "chat": 90, "chat_hard": 70, "safety": 85, "reasoning": 80, "score": 81.25}
    out = api.plan([{"model_id": i} for i in ids], budget=2, labels=[measured])
    assert plain(out) and len(out["proposals"]) == 2 and isinstance(out.pop("notes"), list)
    assert out["method"] == artifact.summary(D.shipped_predictor_dir())["models"]["regression/score"]["method"]
    assert out["pool"]["measured"] == 1 and ids[0] not in [p["model_id"] for p in out["proposals"]]
    candidates = write(tmp_path / "c.csv", "model_id\n" + "\n".join(ids) + "\n")
    labels = write(tmp_path / "l.csv", ",".join(measured) + "\n" + ",".join(str(v) for v in measured.values()) + "\n")
    cli = run("plan", candidates, "--budget", "2", "--labels", labels, "--format", "json")
    assert cli.exit_code == 0, cli.stderr
    assert out == json.loads(cli.stdout)
    with pytest.raises(DataError, match="--budget 4: only 3 of the 4 candidates are not measured yet"):
        api.plan([{"model_id": i} for i in ids], budget=4, labels=[measured])


def test_rank_on_a_list_of_dicts_equals_the_same_csv(run, tmp_path):
    records = [{"model_id": "Qwen/Qwen2.5-7B-Instruct", "ifeval": 0.6, "bbh": 40},
               {"model_id": "acme/new-7b", "ifeval": 70, "bbh": 35.0, "math_lvl5": np.float64(20), "gpqa": 8,
                "musr": 10, "mmlu_pro": 35, "params_b": 7, "post_training": "instruct"},
               {"model_id": "google/gemma-2-9b-it", "ifeval": math.nan}]
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b,post_training\n"
                 "Qwen/Qwen2.5-7B-Instruct,0.6,40,,,,,,\nacme/new-7b,70,35,20,8,10,35,7,instruct\ngoogle/gemma-2-9b-it,,,,,,,,\n")
    from_records = api.rank(records, top=2, max_params=8)
    scale_note, choice, unused = from_records.pop("notes")
    assert scale_note == ("records[0] (Qwen/Qwen2.5-7B-Instruct), column ifeval: 0.6 is far below the row's other "
                          "scores: a fraction among points? it is read as points")
    assert choice.startswith(f"ranking by {from_records['method']}") and "post_training" in unused
    assert from_records == rank_json(run, path, "--top", "2", "--max-params", "8")


def test_rank_options_and_pool():
    out = api.rank(pool="leaderboard", top=3, recipe="bradley_terry", weights=None, top_k=5, level=0.9)
    assert [c["rank"] for c in out["candidates"]] == [1, 2, 3] and out["interval_level"] == 0.9
    weighted = api.rank([{"model_id": "google/gemma-2-9b-it"}], weights={"chat": 1, "safety": 2})
    assert weighted["target"] == "weighted(chat=1,safety=2)"


@pytest.mark.parametrize("call, message", [
    (lambda: api.rank([{"model_id": "acme/unknown"}], strict=True), "'acme/unknown' lacks every input of"),
    (lambda: api.rank([{"model_id": "google/gemma-2-9b-it", "ifeval": 170}]), "records[0] (google/gemma-2-9b-it), column ifeval"),
    (lambda: api.rank([{"model_id": "google/gemma-2-9b-it", "ifeval": [1]}]), "records[0], column ifeval: list is not a number"),
    (lambda: api.rank({"model_id": "x"}), "got one dict"),
    (lambda: api.rank(42), "expected a CSV path or a list of dicts"),
    (lambda: api.rank(), "give either candidates"),
    (lambda: api.rank([{"model_id": "google/gemma-2-9b-it"}], scale="percents"), "scale 'percents' is not one of"),
    (lambda: api.rank([{"model_id": "google/gemma-2-9b-it"}], level=2), "interval level 2"),
    (lambda: api.evaluate(split="alphabetical"), "split 'alphabetical' is not one of lineage, temporal, random"),
])
def test_bad_input_raises_the_cli_message(call, message):
    with pytest.raises(DataError) as info:
        call()
    assert message in str(info.value)


def test_a_bad_predictor_dir_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="not a basepick predictor"):
        api.rank(EXAMPLES / "candidates.csv", predictor=tmp_path)


def regression_records() -> list[dict]:
    with SEED.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r["recipe"] == "regression"]


def test_fit_on_dicts_then_rank_with_it(run, tmp_path):
    records = regression_records()
    summary = api.fit(records, out=tmp_path / "p", shipped_labels=False)
    assert plain(summary) and summary["path"] == str(tmp_path / "p")
    assert set(summary["models"]) == {f"regression/{t}" for t in LB.TARGETS}
    assert summary["data"]["labels"][0]["file"] == "records"
    cli_fit = tmp_path / "q"
    labels = write(tmp_path / "l.csv", SEED.read_text(encoding="utf-8"))  # the same rows as a file, with bradley_terry
    assert run("fit", "--no-shipped-labels", "--labels", labels, "--out", cli_fit).exit_code == 0
    ours = api.rank(EXAMPLES / "candidates.csv", predictor=tmp_path / "p")
    theirs = api.rank(EXAMPLES / "candidates.csv", predictor=cli_fit)
    assert ours["candidates"] == theirs["candidates"]  # same regression rows, same seed: the same model


def test_evaluate_on_dicts_equals_the_cli(run, tmp_path):
    out = api.evaluate(regression_records(), bootstrap=20, baselines=False)
    assert plain(out) and out.pop("notes") == []
    path = write(tmp_path / "l.csv", SEED.read_text(encoding="utf-8"))
    cli = json.loads(run("evaluate", "--labels", path, "--bootstrap", "20", "--no-baselines", "--format", "json").stdout)
    assert out == cli and out["methods"][0]["metrics"]["spearman"] > 0.7
