"""`basepick plan`: the predictive distribution, expected improvement, batches, lineages, the CLI.

Hand-computed values on tiny pools with a (practically) normal error — a t with 1000 degrees of
freedom, whose sd is 1.001 times its scale; the Monte Carlo parts are checked against exact integrals.
"""

from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictor.data import lineage as L
from predictor.data import shipped as D
from predictor.models import bayes as Y
from predictor.models import predictive as P
from tests.conftest import EXAMPLES, REPO, assert_one_line_error, write

LABEL_HEADER = "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score,lr,val_accuracy,basepick_version\n"


def label_row(model_id, score, recipe="regression", eval_name="rewardbench-v1"):
    """A `train --labels-out` row: the label schema plus run metadata columns plan must ignore."""
    return f"{model_id},{recipe},helpsteer2,{eval_name},{score},{score},{score},{score},{score},5e-06,0.71,0.1.0\n"


NORMAL = 1000.0  # degrees of freedom: practically normal
T_SD = math.sqrt(NORMAL / (NORMAL - 2))  # sd of a t(1000) over its scale


def belief(predicted, sd, group, rho, measured=None, dof=NORMAL, low=1.0, high=1.0):
    n = len(predicted)
    measured = np.full(n, np.nan) if measured is None else np.array(measured, float)
    error = P.Error(-(high - low) * P.S.mean_positive(dof), low, high, dof, rho)
    return Y.Belief(P.Predictive(np.array(predicted, float), np.array(sd, float), np.array(group), error), measured)


def normal_cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(z) / math.sqrt(2.0)))


# ---- expected improvement, the sibling update, batches: hand-computed ----------------------------


def test_expected_improvement_by_hand():
    # m=1, s=1, best=0: 1·Φ(1) + φ(1) = 0.841345 + 0.241971
    assert belief([1.0], [1.0], [0], 0.0).improvement(0.0)[0] == pytest.approx(1.083316, rel=2e-3)
    # m=70, s=5, best=71: -1·Φ(-0.2) + 5·φ(-0.2) = -0.420740 + 5·0.391043
    assert belief([70.0], [5.0], [0], 0.0).improvement(71.0)[0] == pytest.approx(1.534473, rel=2e-3)
    # measured: no improvement to expect
    assert belief([73.0, 69.0], [1.0, 1.0], [0, 1], 0.0, [73.0, np.nan]).improvement(71.0)[0] == 0.0


@pytest.mark.parametrize("dof", [3.0, 6.0, 30.0])
def test_improvement_under_a_two_piece_t_matches_monte_carlo(dof):
    b = belief([70.0, 68.0], [3.0, 2.0], [0, 1], 0.3, dof=dof, low=1.6, high=0.7)
    draws = b.draws(200_000, np.random.default_rng(0))
    mc = np.maximum(draws - 71.0, 0.0).mean(axis=0)
    np.testing.assert_allclose(b.improvement(71.0), mc, rtol=0.03)
    mean, sd = b.posterior()
    np.testing.assert_allclose(mean, [70.0, 68.0], atol=0.01)  # the error has mean 0: the mean is the prediction
    np.testing.assert_allclose(sd, draws.std(axis=0), rtol=0.03)


def test_a_measured_sibling_moves_its_lineage_only():
    # A (lineage 0) predicted 70, measured 74: standardised residual 2 with sd 2. rho = 0.5:
    # u's precision 1 + 0.5/0.5 = 2, mean (sqrt(.5)/.5)·2/2 = sqrt(2); sibling B: 72 + 2·sqrt(.5)·sqrt(2) = 74,
    # variance 4·(0.5·0.5 + 0.5) = 3 — as Gaussian conditioning gives: 72 + 0.5·2·2, 4·(1 - 0.5²).
    b = belief([70, 72, 65], [2, 2, 2], [0, 0, 1], 0.5, [74, np.nan, np.nan])
    mean, sd = b.posterior()
    assert mean[0] == 74 and sd[0] == 0  # measured: known
    assert mean[1] == pytest.approx(74.0, abs=1e-6) and sd[1] == pytest.approx(math.sqrt(3.0) * T_SD, rel=1e-4)
    assert mean[2] == pytest.approx(65, abs=1e-6) and sd[2] == pytest.approx(2 * T_SD, rel=1e-4)  # another lineage
    # no correlation: nothing moves
    mean0, sd0 = belief([70, 72, 65], [2, 2, 2], [0, 0, 1], 0.0, [74, np.nan, np.nan]).posterior()
    assert mean0[1] == pytest.approx(72, abs=1e-6) and sd0[1] == pytest.approx(2 * T_SD, rel=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 6),
    rho=st.floats(0.0, 0.85),
    seed=st.integers(0, 10_000),
)
def test_lineage_update_equals_gaussian_conditioning(n, rho, seed):
    rng = np.random.default_rng(seed)
    predicted, sd = rng.normal(70, 5, n), rng.uniform(1, 6, n)
    group = rng.integers(0, 2, n)
    measured = np.where(rng.random(n) < 0.5, predicted + rng.normal(0, 5, n), np.nan)
    measured[0] = np.nan  # at least one open candidate
    mean, post_sd = belief(predicted, sd, group, rho, measured).posterior()
    corr = np.where(group[:, None] == group[None, :], rho, 0.0)
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(sd, sd)  # (n, n) points²
    m, o = ~np.isnan(measured), np.isnan(measured)
    gain = cov[np.ix_(o, m)] @ np.linalg.inv(cov[np.ix_(m, m)]) if m.any() else np.zeros((o.sum(), 0))
    expect_mean = predicted[o] + gain @ (measured[m] - predicted[m])
    expect_var = np.diag(cov[np.ix_(o, o)] - gain @ cov[np.ix_(m, o)])
    np.testing.assert_allclose(mean[o], expect_mean, atol=1e-6)
    np.testing.assert_allclose(post_sd[o] ** 2, expect_var * T_SD ** 2, rtol=1e-4)


def test_next_run_without_and_with_an_incumbent():
    i, gain = Y.next_run(belief([70, 72], [5, 1], [0, 1], 0.0))
    assert i == 1 and math.isnan(gain)  # nothing measured: the highest mean, nothing to improve on
    # measured best 71 (a third base): EI of (70, sd 5) is 1.5345 > EI of (72, sd 1), 1.0833 — the uncertain one
    i, gain = Y.next_run(belief([70, 72, 71], [5, 1, 1], [0, 1, 2], 0.0, [np.nan, np.nan, 71]))
    assert i == 0 and gain == pytest.approx(1.534473, rel=2e-3)


def test_batch_gain_matches_the_exact_expected_best():
    # independent candidates: E[max(b, Y0, Y1)] = b + integral_b^inf (1 - F0(t)·F1(t)) dt
    b = belief([72, 71, 60], [2, 3, 1], [0, 1, 2], 0.0, [np.nan, np.nan, 70])
    batch = Y.choose_batch(b, 2, np.random.default_rng(0))
    assert [i for i, _ in batch] == [0, 1]
    t = np.linspace(70, 100, 30001)
    cdf = lambda m, s: normal_cdf((t - m) / s)  # noqa: E731
    e_first = 70 + np.trapezoid(1 - cdf(72, 2), t)
    e_both = 70 + np.trapezoid(1 - cdf(72, 2) * cdf(71, 3), t)
    assert batch[0][1] == pytest.approx(e_first - 70, abs=3e-3)  # quadrature
    assert batch[1][1] == pytest.approx(e_both - e_first, abs=0.05)  # Monte Carlo, 4000 draws


@pytest.mark.parametrize("rho, second", [(0.0, 1), (0.9, 2)])
def test_a_batch_spreads_over_lineages_when_siblings_are_correlated(rho, second):
    # two siblings predicted 75 and 74.5, another lineage at 74: correlated siblings add little to each other
    b = belief([75, 74.5, 74], [4, 4, 4], [0, 0, 1], rho)
    assert [i for i, _ in Y.choose_batch(b, 2, np.random.default_rng(0))] == [0, second]


def test_odds():
    b = belief([80, 60, 61], [1, 1, 1], [0, 1, 2], 0.0, [np.nan, 79.5, np.nan])
    draws = b.draws(4000, np.random.default_rng(0))
    p_best, now, after = Y.odds(b, [0], draws)
    assert p_best.sum() == pytest.approx(1.0) and p_best[0] > 0.6
    assert 0.5 < now < 1.0  # 79.5 measured, the pool's best is most likely the 80 ± 1 one
    assert after == 1.0  # once it is measured too, the best measured is the pool's best


# ---- lineages -------------------------------------------------------------------------------------


def test_lineage_rule_reproduces_the_study_metadata():
    metadata = D.load_model_metadata()
    assert all(L.infer(model_id)[0] == m["lineage"] for model_id, m in metadata.items())


@pytest.mark.parametrize("model_id, given, expected", [
    ("Qwen/Qwen2.5-14B-Instruct", "", ("qwen", "inferred")),
    ("nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "", ("llama", "inferred")),
    ("allenai/OLMo-2-1124-7B-Instruct", "", ("allenai", "organisation")),
    ("allenai/OLMo-2-1124-7B-Instruct", "OLMo", ("olmo", "given")),
    ("google/gemma-2-9b-it", "", ("gemma", "metadata")),
    ("google/gemma-2-9b-it", "mine", ("mine", "given")),
])
def test_lineage_of(model_id, given, expected):
    assert L.lineage_of(model_id, D.load_model_metadata(), given) == expected


# ---- the CLI --------------------------------------------------------------------------------------


def plan_json(run, *args):
    result = run("plan", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result


def test_plan_json_contract(run):
    out, result = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "3")
    assert out["schema_version"] == 1 and out["recipe"] == "regression" and out["budget"] == 3
    assert len(out["proposals"]) == 3 and len({p["model_id"] for p in out["proposals"]}) == 3
    for p in out["proposals"]:
        assert {"model_id", "predicted", "p_best", "expected_improvement"} <= set(p)
        assert 0 <= p["p_best"] <= 1
    assert out["proposals"][0]["expected_improvement"] is None  # nothing measured: nothing to improve on
    assert all(p["expected_improvement"] > 0 for p in out["proposals"][1:])
    pool = out["pool"]
    assert pool["p_within_1pt"] == 0.0 and pool["stop"] is False and 0 < pool["p_within_1pt_after"] <= 1
    assert out["method"] and "batch" in out["criterion"]
    again, _ = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "3")
    assert again == out  # seeded: deterministic
    assert "lineage from the model id" in result.stderr


def test_measured_labels_update_siblings_and_can_stop(run, tmp_path):
    base, _ = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "15", "--recipe", "regression")
    before = {p["model_id"]: p["predicted"] for p in base["proposals"]}
    high = write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 99.5)
                 + label_row("Qwen/Qwen2.5-14B-Instruct", 99.0))
    out, _ = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "15", "--labels", high)
    after = {p["model_id"]: p["predicted"] for p in out["proposals"]}
    assert "Qwen/Qwen2.5-7B-Instruct" not in after  # measured: not proposed again
    assert after["Qwen/Qwen2.5-3B-Instruct"] > before["Qwen/Qwen2.5-3B-Instruct"]  # a sibling rises
    assert after["google/gemma-2-9b-it"] == before["google/gemma-2-9b-it"]  # another lineage does not
    assert out["pool"]["best_measured"] == {"model_id": "Qwen/Qwen2.5-7B-Instruct", "score": 99.5}
    assert out["pool"]["p_within_1pt"] > 0.9 and out["pool"]["stop"] is True
    table = run("plan", EXAMPLES / "candidates.csv", "--budget", "1", "--labels", high)
    assert table.exit_code == 0 and "stop:" in table.stdout


def test_a_lineage_column_overrides_the_rule(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,lineage\nQwen/Qwen2.5-7B-Instruct,\nallenai/OLMo-2-1124-7B-Instruct,qwen\n"
                 "google/gemma-2-9b-it,\n")
    labels = write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 99.0))
    out, result = plan_json(run, path, "--budget", "2", "--labels", labels)
    olmo = next(p for p in out["proposals"] if p["model_id"] == "allenai/OLMo-2-1124-7B-Instruct")
    assert olmo["lineage"] == "qwen" and olmo["lineage_source"] == "given" and olmo["predicted"] > olmo["prior"]
    assert "ignoring column 'lineage'" not in result.stderr


def test_candidates_from_a_pipe_are_read_once(run, tmp_path):
    """The lineage column comes from the same read as the features: a pipe (<(cat pool.csv)) can be read once only."""
    import threading

    fifo = tmp_path / "pool.csv"
    os.mkfifo(fifo)
    text = "model_id,lineage\nQwen/Qwen2.5-7B-Instruct,\nallenai/OLMo-2-1124-7B-Instruct,qwen\ngoogle/gemma-2-9b-it,\n"
    writer = threading.Thread(target=fifo.write_text, args=(text,))
    unblock = threading.Timer(30, lambda: open(fifo, "w").close())  # a second read gets EOF, not a hang
    writer.start()
    unblock.start()
    result = run("plan", fifo, "--budget", "1", "--format", "json")
    unblock.cancel()
    writer.join()
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["pool"]["size"] == 3 and "ignoring column 'lineage'" not in result.stderr


def test_missing_inputs_widen_a_candidate(run, tmp_path):
    path = write(tmp_path / "c.csv", "model_id,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro,params_b\n"
                 "acme/full-7b,70,30,15,8,10,30,7\nacme/partial-7b,70,30,15,8,10,,7\n")
    out, result = plan_json(run, path, "--budget", "2")
    sd = {p["model_id"]: p["sd"] for p in out["proposals"]}
    assert sd["acme/partial-7b"] > 1.05 * sd["acme/full-7b"]
    assert sd["acme/full-7b"] == pytest.approx(out["residual_sd"], rel=0.03)  # up to the fit's own uncertainty
    assert "lack inputs the ranking method uses" in result.stderr


def test_emit_writes_train_commands_a_slurm_array_can_run(run, tmp_path):
    runs = tmp_path / "runs.jsonl"
    out, _ = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "2", "--emit", runs)
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    assert [r["model_id"] for r in rows] == [p["model_id"] for p in out["proposals"]]
    fake = tmp_path / "bin"
    fake.mkdir()
    write(fake / "basepick", '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n').chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "1", "RUNS_FILE": str(runs),
           "TRAIN_DATA": "t.jsonl", "EVAL_DATA": "v.jsonl", "REWARDBENCH": "rb.jsonl", "MODELS_DIR": "/m"}
    done = subprocess.run(["bash", str(REPO / "examples" / "slurm" / "train_array.sbatch")], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    argv = done.stdout.splitlines()[1:]  # after the "task 1: ..." line
    model_id, name = rows[1]["model_id"], rows[1]["run_name"]
    assert argv[:2] == ["train", f"/m/{model_id}"]
    assert argv[argv.index("--labels-out") + 1] == f"labels/{name}.csv"  # one label file per run
    assert argv[argv.index("--model-id") + 1] == model_id and argv[argv.index("--recipe") + 1] == "regression"
    assert argv[argv.index("--data") + 1] == "t.jsonl" and (tmp_path / "labels").is_dir()
    assert "--lr-sweep" in argv  # the study's label is the best of the learning-rate grid


def test_emitted_commands_parse_as_basepick_train(run, tmp_path):
    """Every option of an emitted command is one `basepick train` knows (checked by the trainer's own parser)."""
    pytest.importorskip("jax")
    from trainer_jax.commands import train

    runs = tmp_path / "runs.jsonl"
    assert run("plan", EXAMPLES / "candidates.csv", "--budget", "1", "--emit", runs).exit_code == 0
    command = json.loads(runs.read_text().splitlines()[0])["command"]
    env = {**os.environ, "TRAIN_DATA": "t.jsonl", "EVAL_DATA": "v.jsonl", "REWARDBENCH": "rb.jsonl"}
    words = subprocess.run(["bash", "-c", f'set -- {command}; printf "%s\\n" "$@"'], env=env, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert words[:2] == ["basepick", "train"]
    ctx = train.make_context("train", words[2:])
    assert ctx.params["lr_sweep"] is True and ctx.params["recipe"] == "regression" and ctx.params["lr"] is None


# ---- bad input: exit 2, one line, nothing written ------------------------------------------------


@pytest.mark.parametrize("case, fragments", [
    ("budget0", ["--budget"]),
    ("budget_above_pool", ["--budget 18", "17 of the 17"]),
    ("unknown_label", ["acme/not-a-candidate", "not among the candidates"]),
    ("pool_of_one", ["pool of one"]),
    ("duplicates", ["duplicate model_id"]),
    ("other_recipe", ["bradley_terry label", "regression recipe"]),
    ("partial", ["incomplete RewardBench", "--allow-partial"]),
    ("two_labels", ["labels Qwen/Qwen2.5-7B-Instruct (regression) again after", "--on-duplicate"]),
])
def test_bad_input(run, tmp_path, case, fragments):
    cands = EXAMPLES / "candidates.csv"
    labels, budget = [], "2"
    if case == "budget0":
        budget = "0"
    elif case == "budget_above_pool":
        budget = "18"
    elif case == "unknown_label":
        labels = [write(tmp_path / "l.csv", LABEL_HEADER + label_row("acme/not-a-candidate", 80))]
    elif case == "pool_of_one":
        cands = write(tmp_path / "c.csv", "model_id\nQwen/Qwen2.5-7B-Instruct\n")
        budget = "1"
    elif case == "duplicates":
        cands = write(tmp_path / "c.csv", "model_id\nQwen/Qwen2.5-7B-Instruct\nQwen/Qwen2.5-7B-Instruct\n")
    elif case == "other_recipe":
        labels = [write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 70, "bradley_terry"))]
    elif case == "partial":
        labels = [write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 80, eval_name="rewardbench-v1-partial"))]
    elif case == "two_labels":
        labels = [write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 80)
                        + label_row("Qwen/Qwen2.5-7B-Instruct", 81, eval_name="rewardbench-v1b"))]
    emit = tmp_path / "runs.jsonl"
    args = ["plan", cands, "--budget", budget, "--emit", emit]
    for path in labels:
        args += ["--labels", path]
    assert_one_line_error(run(*args), *fragments)
    assert not emit.exists()


def test_partial_labels_count_when_asked(run, tmp_path):
    labels = write(tmp_path / "l.csv", LABEL_HEADER + label_row("Qwen/Qwen2.5-7B-Instruct", 80, eval_name="rewardbench-v1-partial"))
    out, _ = plan_json(run, EXAMPLES / "candidates.csv", "--budget", "2", "--labels", labels, "--allow-partial")
    assert out["pool"]["measured"] == 1


def test_unwritable_emit_is_one_line(run, tmp_path):
    blocker = write(tmp_path / "file", "x")
    assert_one_line_error(run("plan", EXAMPLES / "candidates.csv", "--budget", "2", "--emit", blocker / "runs.jsonl"),
                          "cannot write the runs file")


_cell = st.one_of(
    st.sampled_from(["Qwen/Qwen2.5-7B-Instruct", "google/gemma-2-9b-it", "acme/x", "regression", "bradley_terry",
                     "rewardbench-v1", "rewardbench-v1-partial", "", "nan", "80", "101", "-3", "x"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.lists(_cell, min_size=9, max_size=9), max_size=3), raw=st.one_of(st.none(), st.binary(max_size=120)))
def test_random_label_files_give_a_plan_or_one_line_error(tmp_path_factory, rows, raw):
    import csv
    import io

    from click.testing import CliRunner

    import cli

    folder = tmp_path_factory.mktemp("plan")
    if raw is None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([LABEL_HEADER.strip().split(",")[:9]] + rows)
        (folder / "l.csv").write_text(buf.getvalue(), encoding="utf-8", errors="replace")
    else:
        (folder / "l.csv").write_bytes(raw)
    emit = folder / "runs.jsonl"
    result = CliRunner().invoke(cli.main, ["plan", str(EXAMPLES / "candidates.csv"), "--budget", "2", "--labels",
                                           str(folder / "l.csv"), "--emit", str(emit), "--format", "json"])
    if result.exit_code == 0:
        assert len(json.loads(result.stdout)["proposals"]) == 2 and emit.is_file()
    else:
        assert_one_line_error(result)
        assert not emit.exists()
