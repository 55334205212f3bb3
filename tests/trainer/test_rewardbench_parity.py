"""basepick's RewardBench scoring against reward-bench's own constants and formulas, on synthetic results.

The reference is the PyPI wheel ``rewardbench==0.1.4`` (``pip download --no-deps``; ``.ci/run`` puts it in
``$BASEPICK_REFERENCE_DIR``, default ``${XDG_CACHE_HOME:-~/.cache}/basepick/reference``). Its modules import
torch, datasets and fastchat, so the test does not import them: it executes ``constants.py`` as it is and the
scoring functions' own source, taken from ``utils.py`` and ``rewardbench.py`` with ``ast`` (numpy, math):

* v1: the per-prompt rule of ``rewardbench.py`` (``results.append(1) if chosen > rejected ...``),
  per-subset accuracy ``num_correct / num_total`` and ``calculate_scores_per_section(EXAMPLE_COUNTS,
  SUBSET_MAPPING, ...)``; overall = mean of the four sections (the leaderboard's score);
* v2: the best-of-n rule of ``reroll_and_score_dataset`` and the Ties ``process_single_model``.

Skips when the wheel is absent (a developer offline). Every section and the overall score agree to 1e-9.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trainer_jax.evals import rewardbench as rb

VERSION = "0.1.4"
TOL = 1e-9


def _wheel() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("BASEPICK_REFERENCE_DIR") or cache / "basepick" / "reference")
    wheels = sorted(root.glob(f"rewardbench-{VERSION}-*.whl"))
    if not wheels:
        pytest.skip(f"reward-bench reference absent: pip download --no-deps rewardbench=={VERSION} -d {root}")
    return wheels[0]


def _stub_dataset():
    class Dataset:  # process_single_model ends by building a datasets.Dataset of its rows; not needed here
        @staticmethod
        def from_dict(columns):
            return columns

    return Dataset


@pytest.fixture(scope="module")
def ref():
    """reward-bench's constants and scoring functions, executed from the wheel's source."""
    with zipfile.ZipFile(_wheel()) as z:
        constants_src = z.read("rewardbench/constants.py").decode()
        utils = ast.parse(z.read("rewardbench/utils.py").decode())
        runner = ast.parse(z.read("rewardbench/rewardbench.py").decode())
    ns: dict = {"np": np, "math": math, "Dataset": _stub_dataset()}
    exec(compile(constants_src, "rewardbench/constants.py", "exec"), ns)
    functions = {n.name: n for n in utils.body if isinstance(n, ast.FunctionDef)}
    for name in ("calculate_scores_per_section", "sample_stats", "process_single_model"):
        exec(compile(ast.Module([functions[name]], []), f"rewardbench/utils.py:{name}", "exec"), ns)
    # best-of-n: the two statements of reroll_and_score_dataset that score one rerolled prompt
    reroll = [n for n in ast.walk(functions["reroll_and_score_dataset"]) if isinstance(n, ast.Assign)]
    body = [n for n in reroll if ast.unparse(n.targets[0]) in ("max_val", "new_row['results']")]
    assert len(body) == 2, "reward-bench's best-of-n scoring moved; update this test"
    src = "def best_of_n(scores):\n    new_row = {}\n" + "".join(f"    {ast.unparse(n)}\n" for n in body)
    exec(src + "    return new_row['results']\n", ns)
    # v1: the per-prompt rule of the runner
    (rule,) = [n for n in ast.walk(runner) if isinstance(n, ast.Expr) and "chosen > rejected" in ast.unparse(n)]
    exec(f"def v1_results(score_chosen_batch, score_rejected_batch):\n    results = []\n    {ast.unparse(rule)}\n"
         "    return results\n", ns)
    return ns


def _v1_results(rng, subsets, per_subset=12):
    """Synthetic per-prompt scores with exact ties (scores on a coarse grid)."""
    rows = []
    for subset in subsets:
        for i in range(per_subset):
            rows.append({"subset": subset, "id": f"{subset}-{i}", "scores_chosen": float(rng.integers(0, 4)),
                         "scores_rejected": float(rng.integers(0, 4))})
    return rows


def _reference_v1(ref, rows):
    results = ref["v1_results"]([r["scores_chosen"] for r in rows], [r["scores_rejected"] for r in rows])
    by_subset: dict[str, list[int]] = {}
    for r, result in zip(rows, results):
        by_subset.setdefault(r["subset"], []).append(result)
    metrics = {s: sum(v) / len(v) for s, v in by_subset.items()}  # num_correct / num_total, as the runner does
    return ref["calculate_scores_per_section"](ref["EXAMPLE_COUNTS"], ref["SUBSET_MAPPING"], metrics)


def test_v1_tables_are_reward_benchs(ref):
    assert rb.V1_EXAMPLE_COUNTS == ref["EXAMPLE_COUNTS"]
    assert {k: list(v) for k, v in rb.V1_SECTIONS.items()} == ref["SUBSET_MAPPING"]


@pytest.mark.parametrize("seed", range(5))
def test_v1_sections_and_overall_match(ref, seed):
    rng = np.random.default_rng(seed)
    rows = _v1_results(rng, list(ref["EXAMPLE_COUNTS"]))
    ours, theirs = rb.score_v1(rows), _reference_v1(ref, rows)
    assert any(r["scores_chosen"] == r["scores_rejected"] for r in rows)  # exact ties are in the data
    assert set(ours.sections) == set(theirs)
    for section, value in theirs.items():
        assert abs(ours.sections[section] - value) <= TOL, section
    assert abs(ours.overall - float(np.mean(list(theirs.values())))) <= TOL


@pytest.mark.parametrize("seed", range(5))
def test_v1_missing_subsets_match(ref, seed):
    rng = np.random.default_rng(100 + seed)
    names = [s for s in ref["EXAMPLE_COUNTS"] if rng.random() < 0.6]
    names += [next(iter(ref["SUBSET_MAPPING"][sec])) for sec in ref["SUBSET_MAPPING"]
              if not set(ref["SUBSET_MAPPING"][sec]) & set(names) and seed % 2]  # odd seeds: every section
    rows = _v1_results(rng, names)
    ours, theirs = rb.score_v1(rows), _reference_v1(ref, rows)
    for section, value in theirs.items():
        if section in ours.sections:  # scored over the subsets present, as reward-bench does
            assert abs(ours.sections[section] - value) <= TOL, section
        else:  # reward-bench writes 0 for a section without subsets; basepick has no score for it
            assert value == 0 and ours.overall is None and section in ours.missing
    if len(ours.sections) == 4:
        assert abs(ours.overall - float(np.mean(list(theirs.values())))) <= TOL


def _v2_rows(rng, n_per_subset=15):
    rows = []
    for subset in ("Factuality", "Precise IF", "Math", "Safety", "Focus"):
        for i in range(n_per_subset):
            n_chosen, n_rejected = (1, 1) if i % 5 == 0 else (1, int(rng.integers(1, 6)))  # one-vs-one included
            scores = rng.integers(0, 3, n_chosen + n_rejected).astype(float)  # many exact ties
            rows.append({"subset": subset, "id": f"{subset}-{i}", "scores": scores.tolist(), "num_correct": n_chosen})
    for pid in range(12):
        ref_scores = rng.normal(size=1 + int(rng.integers(1, 4)))
        n_tied = int(rng.integers(2, 4))
        tied = rng.normal(size=n_tied + int(rng.integers(1, 4)))
        rows.append({"subset": "Ties", "id": f"ref:{pid}", "scores": ref_scores.tolist(), "num_correct": 1})
        rows.append({"subset": "Ties", "id": f"tied:{pid}", "scores": tied.tolist(), "num_correct": n_tied})
    rows.append({"subset": "Ties", "id": "ref:99", "scores": [1.0, 0.0], "num_correct": 1})  # a ref without tied
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_v2_subsets_and_overall_match(ref, seed):
    rows = _v2_rows(np.random.default_rng(200 + seed))
    ours = rb.score_v2(rows)
    theirs: dict[str, list[float]] = {}
    for r in rows:
        if r["subset"] != "Ties":
            theirs.setdefault(r["subset"], []).append(ref["best_of_n"](r["scores"]))
    expected = {s: float(np.mean(v)) for s, v in theirs.items()}
    _, expected["Ties"] = ref["process_single_model"]([r for r in rows if r["subset"] == "Ties"])
    assert set(ours.sections) == set(expected)
    for subset, value in expected.items():
        assert abs(ours.sections[subset] - value) <= TOL, subset
    assert abs(ours.overall - float(np.mean(list(expected.values())))) <= TOL


def test_v2_ties_with_equal_correct_scores_differ_from_0_1_4_only_in_the_margin_term(ref):
    # Two correct answers scoring exactly alike (spread 0). 0.1.4 leaves the prompt out of the margin term;
    # reward-bench's head (5822f16 and later), and basepick, count tanh(gap / 0 - 1) = +1 here.
    rows = [{"subset": "Ties", "id": "ref:0", "scores": [2.0, 1.0], "num_correct": 1},
            {"subset": "Ties", "id": "tied:0", "scores": [2.0, 2.0, 1.0], "num_correct": 2},
            {"subset": "Ties", "id": "ref:1", "scores": [3.0, 1.0], "num_correct": 1},
            {"subset": "Ties", "id": "tied:1", "scores": [3.0, 2.5, 1.0], "num_correct": 2}]
    ours = rb.score_v2(rows).ties
    _, theirs = ref["process_single_model"](rows)
    margin_head = (1.0 + math.tanh(1.5 / 0.5 - 1)) / 2
    margin_014 = math.tanh(1.5 / 0.5 - 1)
    assert ours["correctness_margin_score"] == pytest.approx(margin_head, abs=TOL)
    assert abs(ours["score"] - theirs - 0.01 * (margin_head - margin_014)) <= TOL
