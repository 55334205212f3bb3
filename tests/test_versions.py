"""Versioned artifacts: content versions, parents, and `basepick inspect`."""

from __future__ import annotations

import json

from predictor.data import shipped as D
from predictor.data.shipped import shipped_predictor_dir
from predictor.models import artifact
from tests.conftest import assert_one_line_error, write

EXTRA = (
    "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\n"
    "HuggingFaceTB/SmolLM2-1.7B-Instruct,regression,helpsteer2,rewardbench-v1,90,55,75,70,72.5\n"
)


def test_versions_parents_and_inspect(run, tmp_path):
    shipped = artifact.load(shipped_predictor_dir()).metadata["version"]
    out = tmp_path / "p"
    assert run("fit", "--out", out).exit_code == 0
    first = json.loads((out / "metadata.json").read_text())
    assert first["version"] == shipped  # same inputs, same seed → same content version
    assert first["parent"] is None  # a refit of identical inputs replaces nothing new

    labels = write(tmp_path / "new.csv", EXTRA)
    result = run("fit", "--labels", labels, "--out", out)
    assert result.exit_code == 0, result.stderr
    second = json.loads((out / "metadata.json").read_text())
    assert second["version"] != first["version"] and second["parent"] == first["version"]
    assert [d["file"] for d in second["data"]["labels"]] == ["seed_paper_rewardbench.csv", "new.csv"]
    assert "HuggingFaceTB/SmolLM2-1.7B-Instruct" in second["labelled"]["regression"]["models"]

    fresh = tmp_path / "q"
    assert run("fit", "--labels", labels, "--out", fresh).exit_code == 0
    assert json.loads((fresh / "metadata.json").read_text())["parent"] == shipped  # built on the shipped labels

    listing = run("inspect", out, fresh, "--format", "json")
    assert listing.exit_code == 0, listing.stderr
    rows = json.loads(listing.stdout)["predictors"]
    assert [r["version"] for r in rows] == [second["version"], second["version"]]
    model = rows[0]["models"]["regression/score"]
    assert model["labelled_models"] == 43 and model["lineage_cv"]["spearman"] > 0.7
    table = run("inspect", out)
    assert table.exit_code == 0 and second["version"] in table.stdout


def test_inspect_defaults_to_the_shipped_predictor(run):
    result = run("inspect", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["predictors"][0]["path"] == str(shipped_predictor_dir())


def test_inspect_a_directory_that_is_not_an_artifact(run, tmp_path):
    assert_one_line_error(run("inspect", tmp_path), "not a basepick predictor")


# An identical refit keeps its parent (issue 13)


def test_an_identical_refit_keeps_its_parent(run, tmp_path):
    lines = D.benchmarks_dir().joinpath(D.LABELS_FILE).read_text(encoding="utf-8").splitlines()
    regression = [lines[0], *[r for r in lines[1:] if ",regression," in r]]
    base = write(tmp_path / "base.csv", "\n".join(regression) + "\n")
    more = write(tmp_path / "more.csv", "\n".join(regression[:1] + [
        "HuggingFaceTB/SmolLM2-1.7B-Instruct,regression,helpsteer2,rewardbench-v1,90,55,75,70,72.5"]) + "\n")
    out = tmp_path / "p"

    def fit(*labels):
        args = [a for path in labels for a in ("--labels", path)]
        assert run("fit", "--no-shipped-labels", *args, "--out", out).exit_code == 0
        return json.loads((out / "metadata.json").read_text())

    first = fit(base)
    second = fit(base, more)
    assert second["parent"] == first["version"] != second["version"]
    again = fit(base, more)  # the same inputs again: the same version, and it still says what it replaced
    assert again["version"] == second["version"] and again["parent"] == first["version"]
