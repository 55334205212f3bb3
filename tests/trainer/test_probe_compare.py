"""`basepick probe compare`: Jensen-Shannon distances (base 2) on hand-made distributions; numpy only."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from trainer_jax.evals.probe_compare import ModelScores, compare, js_distance


def _invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def _scores(path: Path, models: dict[str, dict[str, list[float]]]) -> Path:
    rows = [{"model_id": m, "domain": d, "doc": i, "score": s}
            for m, domains in models.items() for d, values in domains.items() for i, s in enumerate(values)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_js_distance_identical_disjoint_and_a_hand_computed_value():
    assert js_distance([1, 2, 3], [2, 4, 6]) == 0.0  # histograms are normalised first
    assert js_distance([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)  # disjoint: 1 in base 2 (sqrt(ln 2) in nats)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JSD = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4 log2(2)
    expected = math.sqrt(0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25)
    assert js_distance([1, 0], [1, 1]) == pytest.approx(expected, abs=1e-12)
    assert js_distance([1, 3, 0, 2], [2, 1, 1, 0]) == pytest.approx(js_distance([2, 1, 1, 0], [1, 3, 0, 2]))


def test_js_distance_matches_scipy_when_available():
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.random(8), rng.random(8)
        assert js_distance(p, q) == pytest.approx(distance.jensenshannon(p, q, base=2), abs=1e-12)


def test_compare_per_domain_with_shared_bins_and_missing_domains():
    a = ModelScores("a", "x", {"code": np.array([-2.0, -1.9, -1.8]), "web": np.array([-3.0, -2.0])}, {})
    same = ModelScores("same", "x", {"code": np.array([-1.8, -1.9, -2.0])}, {})
    far = ModelScores("far", "x", {"code": np.array([-9.0, -8.5]), "web": np.array([-2.5, -2.1])}, {})
    result = compare([a, same, far], bins=10)
    code, web = result.domains.index("code"), result.domains.index("web")
    assert result.distances[code, 0, 1] == 0.0 and result.distances[code, 0, 2] == pytest.approx(1.0)
    assert math.isnan(result.distances[web, 0, 1])  # `same` has no web documents
    mean = result.mean_distances()
    assert mean[0, 1] == 0.0 and mean[0, 2] == pytest.approx((1.0 + result.distances[web, 0, 2]) / 2)
    assert np.allclose(result.distances, np.transpose(result.distances, (0, 2, 1)), equal_nan=True)
    assert compare([a, far]).bins == {"code": 5, "web": 5}  # automatic: ceil(sqrt(2)) clipped to 5


def test_cli_compare_scores_and_features_json_table_and_heatmap(tmp_path):
    scores = _scores(tmp_path / "scores.jsonl", {
        "m1": {"code": [-1.0, -1.1, -1.2, -1.3], "books": [-2.0, -2.2]},
        "m2": {"code": [-1.3, -1.2, -1.1, -1.0], "books": [-2.1, -2.0]},
    })
    features = tmp_path / "FEATURES.csv"  # m3 known through mean and spread only
    features.write_text("model_id,presence_code,spread_code,presence_books,spread_books\nm3,-5.0,0.1,,\n")
    result = _invoke("probe", "compare", scores, features, "--format", "json", "--bins", 8)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1 and payload["metric"] == "jensen_shannon_distance_base2"
    assert payload["models"] == ["m1", "m2", "m3"] and payload["approximate"] == ["m3"]
    pairs = {(p["a"], p["b"]): p for p in payload["pairs"]}
    assert pairs["m1", "m2"]["domains"]["code"] == 0.0
    assert pairs["m1", "m3"]["domains"] == {"books": None, "code": 1.0}  # far apart, no m3 books
    assert "compared as normal distributions" in result.stderr
    assert "m1: fewer than 20 documents in domain(s) books 2, code 4" in result.stderr  # too few to rely on

    table = _invoke("probe", "compare", scores, features)
    assert table.exit_code == 0 and "m1" in table.stdout and "Jensen-Shannon" in table.stdout

    pytest.importorskip("matplotlib")
    png = tmp_path / "js.png"
    drawn = _invoke("probe", "compare", scores, features, "--heatmap", png, "--format", "json")
    assert drawn.exit_code == 0, drawn.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json.loads(drawn.stdout)["models"] == ["m1", "m2", "m3"]


def test_features_with_equal_means_and_spreads_are_at_distance_zero(tmp_path):
    features = tmp_path / "FEATURES.csv"
    features.write_text("model_id,presence_qa,spread_qa\na,-2.0,0.3\nb,-2.0,0.3\nc,-2.0,0.6\n")
    payload = json.loads(_invoke("probe", "compare", features, "--format", "json").stdout)
    pairs = {(p["a"], p["b"]): p["mean"] for p in payload["pairs"]}
    assert pairs["a", "b"] == 0.0 and 0.1 < pairs["a", "c"] < 1.0


@pytest.mark.parametrize(
    ("content", "name", "fragment"),
    [
        ({"m1": {"code": [-1.0]}}, "s.jsonl", "at least two models"),
        ('{"model_id": "m1", "domain": "code"}', "s.jsonl", "s.jsonl:1: expected a JSON row"),
        ("model_id,presence_code\nm1,-1\nm2,-2\n", "F.csv", "no 'spread_code' column"),
        ("model_id,ifeval\nm1,50\n", "F.csv", "no presence_<domain> columns"),
        (None, "missing.jsonl", "scores file not found"),
    ],
)
def test_bad_compare_input_is_one_error_line_exit_2(tmp_path, content, name, fragment):
    path = tmp_path / name
    if isinstance(content, dict):
        _scores(path, content)
    elif content is not None:
        path.write_text(content + "\n")
    result = _invoke("probe", "compare", path)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_heatmap_without_matplotlib_names_the_plot_extra(tmp_path, monkeypatch):
    scores = _scores(tmp_path / "scores.jsonl", {"m1": {"code": [-1.0, -2.0]}, "m2": {"code": [-1.5, -2.5]}})
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = _invoke("probe", "compare", scores, "--heatmap", tmp_path / "js.png")
    assert result.exit_code == 2 and result.stdout == "" and not (tmp_path / "js.png").exists()
    assert result.stderr.startswith("Error: ") and "pip install 'basepick[plot]'" in result.stderr


def test_enough_documents_draw_no_warning(tmp_path):
    rng = np.random.default_rng(0)
    many = {m: {"code": rng.normal(-1, 0.1, 20).tolist()} for m in ("m1", "m2")}
    result = _invoke("probe", "compare", _scores(tmp_path / "s.jsonl", many), "--format", "json")
    assert result.exit_code == 0 and "fewer than" not in result.stderr
