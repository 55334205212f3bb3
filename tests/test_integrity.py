"""Every file a library reads is checked first (issue 16, item 4): a damaged artifact is one ArtifactError
line, never LightGBM's C++ abort; a damaged snapshot cache is rebuilt."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.models import artifact
from predictor.models.model import RewardPredictor
from tests.conftest import EXAMPLES, assert_one_line_error


@pytest.fixture(scope="module")
def lightgbm_artifact(tmp_path_factory):
    """An artifact whose regression/score model is the LightGBM predictor (the shipped one chose a rule),
    with the shipped model's calibration so that rank and plan can use it."""
    labels = LB.read_labels([D.benchmarks_dir() / D.LABELS_FILE])
    _, columns, targets = LB.join_labels(labels, D.load_snapshot(), "regression")
    model = RewardPredictor().fit(columns, targets["score"])
    model.calibration_ = artifact.load(D.shipped_predictor_dir()).get("regression", "score").calibration_
    out = tmp_path_factory.mktemp("artifact") / "p"
    artifact.save(artifact.Bundle(models={("regression", "score"): model}, metadata={}), out)
    return out


def _copy(src, tmp_path):
    out = tmp_path / "p"
    shutil.copytree(src, out)
    return out


def _commands(out):
    return [("rank", EXAMPLES / "candidates.csv", "--predictor", out),
            ("plan", EXAMPLES / "candidates.csv", "--budget", "1", "--predictor", out)]


def test_the_intact_artifact_ranks_and_records_every_file(run, lightgbm_artifact):
    meta = json.loads((lightgbm_artifact / "metadata.json").read_text())
    files = meta["models"]["regression/score"]["files"]
    assert len(files) == 8 and set(meta["checksums"]) == set(files)
    for name in files:
        data = (lightgbm_artifact / name).read_bytes()
        assert meta["checksums"][name]["bytes"] == len(data)
    for args in _commands(lightgbm_artifact):
        assert run(*args).exit_code == 0


def test_a_truncated_model_file_is_one_line_not_an_abort(run, lightgbm_artifact, tmp_path):
    out = _copy(lightgbm_artifact, tmp_path)
    model = out / "models" / "regression__score__3.txt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    for args in _commands(out):
        assert_one_line_error(run(*args), "regression__score__3.txt", "truncated or altered", "basepick fit")


def test_an_altered_model_file_of_the_same_size_is_caught_by_its_sha256(run, lightgbm_artifact, tmp_path):
    out = _copy(lightgbm_artifact, tmp_path)
    model = out / "models" / "regression__score__0.txt"
    data = bytearray(model.read_bytes())
    i = data.index(b"leaf_value=") + len(b"leaf_value=")
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    model.write_bytes(bytes(data))
    for args in _commands(out):
        assert_one_line_error(run(*args), "regression__score__0.txt", "sha256 differs")


def test_a_missing_model_file_or_checksum(run, lightgbm_artifact, tmp_path):
    out = _copy(lightgbm_artifact, tmp_path)
    (out / "models" / "regression__score__5.txt").unlink()
    assert_one_line_error(run(*_commands(out)[0]), "regression__score__5.txt", "missing", "partial")
    out2 = _copy(lightgbm_artifact, tmp_path / "b")
    meta = json.loads((out2 / "metadata.json").read_text())
    del meta["checksums"]["models/regression__score__1.txt"]
    (out2 / "metadata.json").write_text(json.dumps(meta))
    assert_one_line_error(run(*_commands(out2)[0]), "no checksum", "regression__score__1.txt")


@pytest.mark.parametrize("schema, fragments", [(99, ["newer basepick", "upgrade"]), (1, ["older basepick", "refit"])])
def test_an_artifact_of_another_schema_says_which_way_to_go(run, tmp_path, schema, fragments):
    out = _copy(D.shipped_predictor_dir(), tmp_path)
    meta = json.loads((out / "metadata.json").read_text())
    meta["schema_version"] = schema
    (out / "metadata.json").write_text(json.dumps(meta))
    assert_one_line_error(run(*_commands(out)[0]), *fragments)


def test_fit_replaces_an_artifact_of_an_older_schema(run, tmp_path):
    out = _copy(D.shipped_predictor_dir(), tmp_path)
    meta = json.loads((out / "metadata.json").read_text())
    meta["schema_version"] = 1
    (out / "metadata.json").write_text(json.dumps(meta))
    result = run("fit", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "metadata.json").read_text())["schema_version"] == artifact.SCHEMA_VERSION


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "directory"])
def test_a_damaged_snapshot_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("BASEPICK_CACHE_DIR", str(tmp_path))
    parsed = D.load_snapshot()
    (cache,) = tmp_path.glob("snapshot-*.npz")
    data = cache.read_bytes()
    if damage == "truncate":
        cache.write_bytes(data[: len(data) // 3])
    elif damage == "flip":  # a byte inside the stored arrays: the zip's CRC tells
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        cache.write_bytes(bytes(flipped))
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        cache.unlink()
        cache.mkdir()
    assert D._read_cache(cache) is None  # seen as damaged, not read
    again = D.load_snapshot()
    assert again.ids == parsed.ids and again.v2_ids == parsed.v2_ids
    for name, col in parsed.columns.items():
        np.testing.assert_array_equal(again.columns[name], col)
    if damage != "directory":  # rewritten whole (a folder in its way is left alone and the table parsed)
        assert D.load_snapshot().ids == parsed.ids and cache.read_bytes() != b""
