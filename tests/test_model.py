"""The estimator: determinism, no collapse to a constant, explanations that add up, artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.data import labels as LB
from predictor.data import shipped as D
from predictor.errors import ArtifactError, DataError
from predictor.jobs.fit import fit_bundle
from predictor.models import artifact
from predictor.models.model import ModelConfig, RewardPredictor

SHIPPED_LABELS = [D.benchmarks_dir() / D.LABELS_FILE]


@pytest.fixture(scope="module")
def bundle():
    """One fit of the shipped labels, shared: each fit runs 100 lineage-out fits for its calibration."""
    return fit_bundle(SHIPPED_LABELS)


@pytest.fixture(scope="module")
def table():
    labels = LB.load_labels(SHIPPED_LABELS)
    return LB.join_labels(labels, D.load_snapshot(), "regression")


def test_same_inputs_give_byte_identical_models(table):
    _, columns, targets = table
    a = RewardPredictor().fit(columns, targets["score"]).model_strings()
    b = RewardPredictor().fit(columns, targets["score"]).model_strings()
    assert a == b
    c = RewardPredictor(ModelConfig(seed=1)).fit(columns, targets["score"]).model_strings()
    assert c != a  # the seed is really passed down


def test_predictions_do_not_collapse(table):
    _, columns, targets = table
    model = RewardPredictor().fit(columns, targets["score"])
    pred = model.predict(columns)
    assert np.std(pred) > 2.0  # points; the labels' spread is ~6
    assert np.corrcoef(pred, targets["score"])[0, 1] > 0.7
    gbm_only = np.stack([b.predict(np.stack([columns[f] for f in model.feature_names_in_], 1)) for b in model.boosters_])
    assert np.ptp(gbm_only) > 0.1  # the boosters themselves split, not only the offset


def test_lightgbm_defaults_would_collapse_and_the_guard_catches_it(table):
    _, columns, targets = table
    # LightGBM's default min_data_in_leaf=20 cannot split 30 rows: refused before training
    with pytest.raises(DataError, match="need at least 40 labelled models"):
        RewardPredictor(ModelConfig(min_data_in_leaf=20)).fit({k: v[:30] for k, v in columns.items()}, targets["score"][:30])
    # features that carry nothing make trees without a split: refused after training
    constant = {k: np.full_like(v, 1.0) for k, v in columns.items()}
    with pytest.raises(DataError, match="no split"):
        RewardPredictor().fit(constant, targets["score"])


def test_contributions_add_up_to_the_prediction_on_the_fit_scale(table):
    _, columns, targets = table
    model = RewardPredictor().fit(columns, targets["score"])
    names, contrib = model.contributions(columns)  # points, linearised at each prediction
    assert "mean_v2" in names and "log_params" in names
    share = model.predict(columns) / 100.0
    slope = 100.0 * share * (1.0 - share)
    logit = np.log(share / (1.0 - share))
    # on the logit scale the per-feature terms plus one expected value give the prediction exactly
    expected_value = logit - contrib.sum(axis=1) / slope
    assert np.ptp(expected_value) < 1e-6


def test_predictions_saturate_below_100_when_extrapolating(table):
    _, columns, targets = table
    model = RewardPredictor().fit(columns, targets["score"])
    row = {k: v[:1].copy() for k, v in columns.items()}
    row["log_params"] = row["log_params"] + np.log(1000)  # a thousand times the parameters
    row["mean_v2"] = row["mean_v2"] + 40
    assert 90 < model.predict(row)[0] < 100


def test_extrapolation_follows_the_linear_offset(table):
    _, columns, targets = table
    model = RewardPredictor().fit(columns, targets["score"])
    row = {k: v[:1].copy() for k, v in columns.items()}
    small = model.predict(row)[0]
    row["log_params"] = row["log_params"] + np.log(10)  # same scores, 10x the parameters
    assert model.predict(row)[0] != small  # trees alone would give the same value beyond the range


def test_artifact_round_trip(tmp_path, bundle):
    artifact.save(bundle, tmp_path / "p")
    loaded = artifact.load(tmp_path / "p")
    assert loaded.keys() == sorted(bundle.models)
    snap = D.load_snapshot()
    for key, model in bundle.models.items():
        assert loaded.get(*key).model_strings() == model.model_strings()
        np.testing.assert_array_equal(loaded.get(*key).predict(snap.columns), model.predict(snap.columns))


def test_shipped_artifact_is_a_fresh_fit_of_the_shipped_labels(bundle):
    """Golden: data/predictor must be what `basepick fit --out data/predictor` writes today, on any machine.

    The fitted numbers are compared within floating-point noise, never bit for bit: their last digits
    depend on the CPU's BLAS kernels (OPENBLAS_CORETYPE=Prescott moves a ridge coefficient by 2 ulp).
    """
    shipped = artifact.load(D.shipped_predictor_dir())
    fresh = bundle
    assert shipped.metadata["data"] == fresh.metadata["data"], "shipped data changed: refit data/predictor"
    assert shipped.metadata["fit"] == json.loads(json.dumps(fresh.metadata["fit"])), "fit changed: refit data/predictor"
    assert shipped.keys() == sorted(fresh.models)
    snap = D.load_snapshot()
    for key, model in fresh.models.items():
        state = json.loads(json.dumps(model.state()))
        assert_close_state(shipped.metadata["models"]["/".join(key)], state, key)
        np.testing.assert_allclose(shipped.get(*key).predict(snap.columns), model.predict(snap.columns), atol=1e-6)


def assert_close_state(shipped, fresh, where, rel=1e-6, rounded=2e-4):
    """Equal structure and strings; numbers equal within ``rel`` (or one step of the 4-decimal rounding)."""
    if isinstance(fresh, dict):
        assert set(fresh) <= set(shipped), (where, sorted(set(fresh) - set(shipped)))
        for k, v in fresh.items():
            assert_close_state(shipped[k], v, (where, k), rel, rounded)
    elif isinstance(fresh, list):
        assert isinstance(shipped, list) and len(shipped) == len(fresh), where
        for i, (a, b) in enumerate(zip(shipped, fresh)):
            assert_close_state(a, b, (where, i), rel, rounded)
    elif isinstance(fresh, float) and not isinstance(shipped, str):
        assert abs(shipped - fresh) <= max(rel * abs(fresh), rounded), (where, shipped, fresh)
    else:
        assert shipped == fresh, (where, shipped, fresh)


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch, bundle):

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifact, "_replace_dir", boom)
    with pytest.raises(ArtifactError, match="cannot write .*p: disk full"):  # one line for the CLI, no traceback
        artifact.save(bundle, tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_replacing_an_artifact_keeps_the_old_one_until_the_new_one_is_complete(tmp_path, bundle):
    artifact.save(bundle, tmp_path / "p")
    changed = artifact.Bundle(models=bundle.models, metadata={**bundle.metadata, "seed": 99})
    artifact.save(changed, tmp_path / "p")
    assert json.loads((tmp_path / "p" / "metadata.json").read_text())["seed"] == 99
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


@pytest.fixture(scope="module")
def lightgbm_bundle(table):
    """An artifact whose chosen method is the LightGBM predictor (the shipped one chose linear rules)."""
    _, columns, targets = table
    return artifact.Bundle(models={("regression", "score"): RewardPredictor().fit(columns, targets["score"])}, metadata={})


def test_feature_mismatch_is_reported(tmp_path, lightgbm_bundle):
    artifact.save(lightgbm_bundle, tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "metadata.json").read_text())
    meta["models"]["regression/score"]["config"]["features"] = ["ifeval"]
    (tmp_path / "p" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="do not match"):
        artifact.load(tmp_path / "p").get("regression", "score")


def test_partial_artifact_is_refused(tmp_path, lightgbm_bundle):
    artifact.save(lightgbm_bundle, tmp_path / "p")
    (tmp_path / "p" / "models" / "regression__score__3.txt").unlink()
    with pytest.raises(ArtifactError, match="partial"):
        artifact.load(tmp_path / "p")


def test_lightgbm_artifact_round_trips(tmp_path, lightgbm_bundle, table):
    _, columns, _ = table
    artifact.save(lightgbm_bundle, tmp_path / "p")
    loaded = artifact.load(tmp_path / "p").get("regression", "score")
    assert loaded.model_strings() == lightgbm_bundle.models[("regression", "score")].model_strings()
    np.testing.assert_array_equal(loaded.predict(columns), lightgbm_bundle.models[("regression", "score")].predict(columns))


def test_artifact_records_the_choice_and_its_out_of_fold_figures():
    meta = artifact.load(D.shipped_predictor_dir()).metadata
    from predictor.models.methods import METHODS

    for key, entry in meta["models"].items():
        cal = entry["calibration"]
        assert entry["method"] == cal["method"] in METHODS, key
        figures = cal["choice"]["methods"]
        assert set(figures) == set(METHODS)
        best = min(f["decision_regret"] for f in figures.values())
        chosen = figures[entry["method"]]
        assert chosen["decision_regret"] - best <= chosen["se_vs_best"] + 1e-9  # within one SE of the best
        simpler = METHODS[: METHODS.index(entry["method"])]  # none of them qualified
        assert all(figures[m]["decision_regret"] - best > figures[m]["se_vs_best"] for m in simpler), key
        error = cal["predictive"]["error"]
        assert error["low"] > 0 and error["high"] > 0 and 0 <= error["rho"] <= 0.9
        assert len(cal["level"]) == len(cal["measured"]) == len(cal["lineage"]) == len(cal["ids"])
        assert len(cal["missing"]["ratios"]) == 2 ** len(cal["missing"]["groups"]) and cal["missing"]["ratios"][0] == 1.0
