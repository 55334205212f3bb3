"""`basepick rank` end to end: JSON contract, ordering, filters, formats, provenance, extrapolation."""

from __future__ import annotations

import csv
import io

import pytest

from predictor.data.shipped import load_snapshot
from tests.conftest import EXAMPLES, rank_json, write


def test_json_contract_on_the_shipped_example(run):
    out = rank_json(run, EXAMPLES / "candidates.csv")
    assert out["schema_version"] == 1 and out["recipe"] == "regression" and out["target"] == "score"
    cands = out["candidates"]
    assert [c["rank"] for c in cands] == list(range(1, len(cands) + 1))
    assert len(cands) == 17
    predicted = [c["predicted"] for c in cands]
    assert predicted == sorted(predicted, reverse=True)
    assert all(0 <= p <= 100 for p in predicted)
    assert len(set(predicted)) > 10  # a collapsed model would predict one value
    assert {c["size_bucket"] for c in cands} == {"<3B", "3-6B", ">=6B"}
    for c in cands:
        assert set(c["features"]) == {"given", "snapshot", "missing"}
        assert c["features"]["given"] == []  # ids only: everything comes from the snapshot


def test_bigger_better_models_rank_higher_within_a_family(run):
    ids = [c["model_id"] for c in rank_json(run, EXAMPLES / "candidates.csv")["candidates"]]
    assert ids.index("Qwen/Qwen2.5-7B-Instruct") < ids.index("Qwen/Qwen2.5-3B-Instruct") < ids.index("Qwen/Qwen2.5-0.5B-Instruct")


def test_models_beyond_the_labelled_sizes_are_marked(run, tmp_path):
    out = rank_json(run, EXAMPLES / "candidates.csv")
    flagged = {c["model_id"] for c in out["candidates"] if c["outside_labelled_range"]}
    assert flagged == {"Qwen/Qwen2.5-14B-Instruct", "microsoft/phi-4", "mistralai/Mistral-Nemo-Instruct-2407"}


@pytest.mark.parametrize("recipe", ["regression", "bradley_terry"])
@pytest.mark.parametrize("target", ["score", "chat", "chat_hard", "safety", "reasoning"])
def test_every_recipe_and_target_ranks(run, recipe, target):
    out = rank_json(run, EXAMPLES / "candidates.csv", "--recipe", recipe, "--target", target)
    assert out["recipe"] == recipe and out["target"] == target
    if out["method"] == "mean leaderboard score":  # a rule: its order, even where its line to points is flat
        snapshot = load_snapshot()
        means = [snapshot.columns["mean_v2"][snapshot.index[c["model_id"]]] for c in out["candidates"]]
        assert means == sorted(means, reverse=True)
    else:
        assert len({c["predicted"] for c in out["candidates"]}) > 5


def test_top_and_max_params(run):
    out = rank_json(run, EXAMPLES / "candidates.csv", "--top", "3", "--max-params", "4")
    cands = out["candidates"]
    assert len(cands) == 3 and all(c["params_b"] <= 4 for c in cands)
    assert [c["rank"] for c in cands] == [1, 2, 3]


def test_given_values_override_the_snapshot_and_fractions_are_detected(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh\nQwen/Qwen2.5-0.5B-Instruct,0.9,0.8\nQwen/Qwen2.5-7B-Instruct,0.1,0.2\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 0
    assert "c.csv: every score is at most 1: read as fractions and scaled to 0-100" in result.stderr
    import json

    cands = {c["model_id"]: c for c in json.loads(result.stdout)["candidates"]}
    assert cands["Qwen/Qwen2.5-0.5B-Instruct"]["features"]["given"] == ["ifeval", "bbh"]
    assert "ifeval" in cands["Qwen/Qwen2.5-7B-Instruct"]["features"]["given"]


def test_scale_percent_forces_points(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,gpqa\nQwen/Qwen2.5-0.5B-Instruct,0.5\n")
    result = run("rank", path, "--scale", "percent", "--format", "json")
    assert result.exit_code == 0 and "read as fractions" not in result.stderr


def test_unknown_model_with_features_ranks_and_missing_features_are_listed(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\nacme/new-7b,70,30,15,8,10,30,7\n")
    out = rank_json(run, path)
    (cand,) = out["candidates"]
    assert cand["features"]["given"] == ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro", "params_b"]
    assert cand["size_bucket"] == ">=6B"


def test_pool_leaderboard_ranks_every_v2_model(run):
    out = rank_json(run, "--pool", "leaderboard")
    assert len(out["candidates"]) == 4497
    assert out["candidates"][-1]["rank"] == 4497


def test_csv_output_parses_and_matches_json(run):
    as_json = rank_json(run, EXAMPLES / "candidates.csv")
    result = run("rank", EXAMPLES / "candidates.csv", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["model_id"] for r in rows] == [c["model_id"] for c in as_json["candidates"]]
    assert [float(r["predicted"]) for r in rows] == [c["predicted"] for c in as_json["candidates"]]


def test_rank_from_a_foreign_working_directory(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(rank_json(run, EXAMPLES / "candidates.csv")["candidates"]) == 17


def test_fit_then_rank_round_trip(run, tmp_path):
    out_dir = tmp_path / "pred"
    result = run("fit", "--out", out_dir)
    assert result.exit_code == 0, result.stderr
    assert (out_dir / "metadata.json").is_file()
    shipped = rank_json(run, EXAMPLES / "candidates.csv")
    mine = rank_json(run, EXAMPLES / "candidates.csv", "--predictor", out_dir)
    assert mine == shipped  # the shipped artifact is a fit of the shipped labels with seed 0


def test_missing_features_are_said_on_stderr(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,params_b\nacme/no-mmlu-pro,70,30,15,8,10,7\n")
    result = run("rank", path, "--format", "json")
    assert result.exit_code == 0
    assert "1 candidate(s) lack features the model uses" in result.stderr
    full = run("rank", EXAMPLES / "candidates.csv", "--format", "json")
    assert "lack features" not in full.stderr


def test_rank_forest_plot(run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "forest.png"
    result = run("rank", EXAMPLES / "candidates.csv", "--plot", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["forest.png"]
    assert f"wrote {out}" in result.stderr
