"""presence_* features (from `basepick probe`) flow into fit, evaluate and rank.

The seed study's presence scores are not public, so these tests build a synthetic feature file
whose presence column carries part of the label's signal, and check the plumbing end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import dataset as DS
from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.models import artifact
from predictor.models import methods as Mt
from predictor.models.model import ModelConfig
from tests.conftest import rank_json, write


@pytest.fixture(scope="module")
def presence_file(tmp_path_factory):
    labels = [l for l in LB.load_labels([D.benchmarks_dir() / D.LABELS_FILE]) if l.recipe == "regression"]
    rng = np.random.default_rng(0)
    lines = ["model_id,presence_code,spread_code,docs_code"]
    for label in labels:
        value = -2.0 + (label.values["score"] - 75.0) / 25.0 + rng.normal(0, 0.05)
        lines.append(f"{label.model_id},{min(value, -0.01):.4f},0.3,12")
    return write(tmp_path_factory.mktemp("presence") / "features.csv", "\n".join(lines) + "\n")


def test_evaluate_reports_with_and_without_presence(run, presence_file):
    result = run("evaluate", "--features", presence_file, "--bootstrap", "0", "--format", "json")
    assert result.exit_code == 0, result.stderr
    methods = {m["name"]: m["metrics"] for m in json.loads(result.stdout)["methods"]}
    with_p, without = methods["basepick (LightGBM)"], methods["basepick without presence_*"]
    assert with_p["mae"] < without["mae"]  # the synthetic presence column carries label signal
    assert with_p["spearman"] > without["spearman"]


def test_fit_uses_presence_and_rank_reads_it_from_candidates(run, presence_file, tmp_path):
    out = tmp_path / "p"
    result = run("fit", "--features", presence_file, "--out", out)
    assert result.exit_code == 0, result.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["data"]["features"][0]["file"] == "features.csv"
    shipped = artifact.load(D.shipped_predictor_dir()).metadata["models"]["regression/score"]["calibration"]
    with_p = meta["models"]["regression/score"]["calibration"]["choice"]["methods"]["basepick (LightGBM)"]
    assert with_p["mae"] < shipped["choice"]["methods"]["basepick (LightGBM)"]["mae"]  # the predictor used presence

    # rank with a predictor whose chosen method reads presence_code: given values are used, missing stays NaN
    ds = DS.load_dataset([D.benchmarks_dir() / D.LABELS_FILE], "regression", "score", [presence_file])
    model = Mt.fit(Mt.PREDICTOR, ds, ModelConfig())
    assert "presence_code" in model.feature_names_in_
    artifact.save(artifact.Bundle(models={("regression", "score"): model}, metadata={}), tmp_path / "q")
    cands = write(tmp_path / "c.csv", "model_id,presence_code\nQwen/Qwen2.5-7B-Instruct,-0.5\nQwen/Qwen2.5-3B-Instruct,-3.5\n")
    ranked = rank_json(run, cands, "--predictor", tmp_path / "q")["candidates"]
    assert all(c["features"]["given"] == ["presence_code"] for c in ranked)
    no_presence = write(tmp_path / "d.csv", "model_id\nQwen/Qwen2.5-7B-Instruct\n")
    (only,) = rank_json(run, no_presence, "--predictor", tmp_path / "q")["candidates"]
    assert "presence_code" in only["features"]["missing"]  # missing stays missing (NaN), never 0

    # the fitted artifact chose a method without presence: rank says the column is given but unused
    unused = run("rank", cands, "--predictor", out, "--format", "json")
    assert unused.exit_code == 0 and "given but unused" in unused.stderr and "presence_code" in unused.stderr
    assert all(c["given_unused"] == ["presence_code"] for c in json.loads(unused.stdout)["candidates"])


def test_positive_presence_is_rejected(run, tmp_path):
    bad = write(tmp_path / "f.csv", "model_id,presence_code\nQwen/Qwen2.5-7B-Instruct,0.5\n")
    result = run("rank", bad)
    assert result.exit_code == 2 and "log-probability" in result.stderr
