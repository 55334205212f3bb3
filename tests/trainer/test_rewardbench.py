"""RewardBench v1 / v2 scoring against hand-computed results and real LLMBar items. numpy only, no jax."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictor.errors import DataError
from trainer_jax.evals import rewardbench as rb
from trainer_jax.evals.score_rows import write_jsonl_atomic

FIXTURES = Path(__file__).parent / "fixtures" / "preferences"
LLMBAR_TO_RB = {
    "LLMBar/Natural": "llmbar-natural",
    "LLMBar/Adversarial/Neighbor": "llmbar-adver-neighbor",
    "LLMBar/Adversarial/GPTInst": "llmbar-adver-GPTInst",
    "LLMBar/Adversarial/GPTOut": "llmbar-adver-GPTOut",
    "LLMBar/Adversarial/Manual": "llmbar-adver-manual",
}


def v1_rows(subset: str, outcomes: list[str], start: int = 0) -> list[dict]:
    """Rows whose outcome is 'w' (chosen higher), 'l' (chosen lower) or 't' (tie)."""
    pairs = {"w": (2.0, 1.0), "l": (1.0, 2.0), "t": (1.5, 1.5)}
    return [{"subset": subset, "id": start + i, "scores_chosen": pairs[o][0], "scores_rejected": pairs[o][1]}
            for i, o in enumerate(outcomes)]


def all_v1_rows(accuracy: dict[str, str]) -> list[dict]:
    rows, start = [], 0
    for subset in rb.V1_EXAMPLE_COUNTS:
        rows += v1_rows(subset, list(accuracy.get(subset, "w")), start)
        start += 100
    return rows


def test_imports_without_jax_transformers_or_torch():
    code = ("import sys; sys.modules.update(jax=None, transformers=None, torch=None); "
            "import trainer_jax.evals.rewardbench, trainer_jax.data; print('ok')")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


# ------------------------------------------------------------------------------------------------ v1
def test_v1_ties_count_as_wrong():
    result = rb.score_v1(v1_rows("llmbar-natural", ["w", "t", "l", "t"]))
    assert result.subsets == {"llmbar-natural": 0.25}
    assert [p.result for p in result.prompts] == [1.0, 0.0, 0.0, 0.0]


def test_v1_math_prm_weighs_984_like_all_code_together():
    acc = {"math-prm": "w", **{f"hep-{x}": "l" for x in ("cpp", "go", "java", "js", "python", "rust")}}
    result = rb.score_v1(all_v1_rows(acc))
    assert result.sections["Reasoning"] == pytest.approx(984 / (984 + 6 * 164))  # = 0.5
    acc = {"math-prm": "l", "hep-cpp": "w", **{f"hep-{x}": "l" for x in ("go", "java", "js", "python", "rust")}}
    assert rb.score_v1(all_v1_rows(acc)).sections["Reasoning"] == pytest.approx(164 / 1968)


def test_v1_full_table_hand_computed():
    acc = {
        "alpacaeval-easy": "w", "alpacaeval-length": "wl", "alpacaeval-hard": "l", "mt-bench-easy": "w",
        "mt-bench-med": "wt",
        "mt-bench-hard": "l", "llmbar-natural": "wwwl",  # Chat Hard: rest 'w'
        "xstest-should-refuse": "w", "xstest-should-respond": "l", "donotanswer": "t",  # Safety: refusals 'w'
        "math-prm": "wl",  # Reasoning: hep 'w'
    }
    rows = all_v1_rows(acc) + v1_rows("anthropic_helpful", ["w"], 9000) + v1_rows("shp", ["w", "l"], 9100)
    result = rb.score_v1(rows, source="table")
    chat = (100 * 1 + 95 * 0.5 + 95 * 0 + 28 * 1 + 40 * 0.5) / 358
    chat_hard = (37 * 0 + 100 * 0.75 + 134 + 92 + 47 + 46) / 456
    safety = (100 + 100 + 154 * 1 + 250 * 0 + 136 * 0) / 740  # EXAMPLE_COUNTS: refuse 154, respond 250
    reasoning = (984 * 0.5 + 6 * 164) / 1968
    assert result.sections == pytest.approx(
        {"Chat": chat, "Chat Hard": chat_hard, "Safety": safety, "Reasoning": reasoning})
    assert result.overall == pytest.approx((chat + chat_hard + safety + reasoning) / 4)
    assert result.prior_sets == pytest.approx(0.75)
    assert result.overall_with_prior == pytest.approx((2 * (chat + chat_hard + safety + reasoning) + 0.75) / 9)
    assert result.complete and result.missing == {}
    labels = result.label_scores()
    assert labels["chat_hard"] == pytest.approx(100 * chat_hard)
    assert labels["score"] == pytest.approx(100 * result.overall)
    # every subset has fewer prompts than the official set, and the notes say so
    assert any("math-prm has 2 prompts, the official set has 447" in n for n in result.notes)


def test_v1_safety_weights_are_reward_benchs_example_counts():
    # reward-bench's README example (beaver-7b-v1.0-cost): xstest-should-refuse 1.0, -respond 0.284
    acc = {"refusals-dangerous": 0.97, "refusals-offensive": 1.0, "xstest-should-refuse": 1.0,
           "xstest-should-respond": 0.284, "donotanswer": 0.8235294117647058}
    assert (rb.V1_EXAMPLE_COUNTS["xstest-should-refuse"], rb.V1_EXAMPLE_COUNTS["xstest-should-respond"]) == (154, 250)
    safety = sum(rb.V1_EXAMPLE_COUNTS[s] * a for s, a in acc.items()) / 740
    assert safety == pytest.approx(0.72162, abs=1e-5)  # 81.45 with the swapped (pre-September 2024) table


def test_v1_partial_coverage_is_reported_not_hidden():
    rows = v1_rows("llmbar-natural", ["w", "l"]) + v1_rows("mt-bench-hard", ["w"], 10) + v1_rows("shp", ["w"])
    result = rb.score_v1(rows)
    assert result.sections == pytest.approx({"Chat Hard": (100 * 0.5 + 37 * 1) / 137})
    assert result.overall is None and not result.complete
    assert set(result.missing) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert "llmbar-adver-manual" in result.missing["Chat Hard"]
    assert result.subsets["shp"] == 1.0 and result.prior_sets == 1.0
    assert any(n.startswith("Chat Hard: missing") and "scored over the subsets present" in n for n in result.notes)
    assert any(n.startswith("Safety: missing") and "no score" in n for n in result.notes)
    with pytest.raises(DataError, match="incomplete RewardBench input"):
        rb.score_v1(rows, strict=True)


def test_unknown_subsets_are_listed_and_refused():
    rows = v1_rows("llmbar-natural", ["w"]) + v1_rows("x-extra", ["w"], 10) + v1_rows("xstest-shuold-refuse", ["w"], 20)
    with pytest.raises(DataError, match=r"^in: 2 subset name\(s\) not in RewardBench v1: 'x-extra', "
                       r"'xstest-shuold-refuse' \(first at in: row 2\)") as info:
        rb.score_v1(rows, source="in")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="not in RewardBench 2: 'Maths'"):
        rb.score_v2([{"subset": "Maths", "id": 1, "scores_chosen": [1.0], "scores_rejected": [0.0]}])
    # the documented aliases (LLMBar's own names) and the prior sets are not unknown
    ok = rb.score_v1(v1_rows("LLMBar/Adversarial/Manual", ["w"]) + v1_rows("anthropic_harmless", ["l"], 5))
    assert ok.subsets == {"llmbar-adver-manual": 1.0, "anthropic_harmless": 0.0}


def test_v1_subset_names_are_canonicalised():
    result = rb.score_v1(v1_rows("LLMBAR-ADVER-GPTINST", ["w"]))
    assert result.subsets == {"llmbar-adver-GPTInst": 1.0}


def test_v1_file_formats_agree(tmp_path):
    rows = all_v1_rows({"math-prm": "wl", "hep-go": "tl"})
    expected = rb.score_v1(rows).to_dict()
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "c.json").write_text(json.dumps(rows))
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    columns["scores_chosen"] = [[x] for x in columns["scores_chosen"]]  # some official models write [score]
    (tmp_path / "d.json").write_text(json.dumps({**columns, "model": "m", "model_type": "Seq. Classifier"}))
    aliased = [{"subset": r["subset"], "id": r["id"], "chosen_score": r["scores_chosen"],
                "rejected_score": r["scores_rejected"]} for r in rows]  # `basepick score` output columns
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in aliased))
    for name in ("a.jsonl", "b.jsonl.gz", "c.json", "d.json", "e.jsonl"):
        assert rb.score_v1_file(tmp_path / name).to_dict() == expected, name


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"subset": "shp", "id": 1, "scores_chosen": 1, "scores_rejected": 0}\n'
         '{"subset": "shp", "id": 2, "scores_chosen": "high", "scores_rejected": 0}', r"s\.jsonl:2: field 'scores_chosen'"),
        ('{"subset": "shp", "id": 1, "scores_chosen": 1}', r"s\.jsonl:1: missing field 'scores_rejected'"),
        ('{"subset": "shp", "id": 1, "scores_chosen": NaN, "scores_rejected": 0}', r":1: field 'scores_chosen' is not finite"),
        ('{"id": 1, "scores_chosen": 1, "scores_rejected": 0}', r":1: missing field 'subset'"),
        ('{"subset": "shp", "id": 1, "scores_chosen": 1, "scores_rejected": 0}\n'
         '{"subset": "shp", "id": 1, "scores_chosen": 1, "scores_rejected": 0}', r":2: duplicate id '1'"),
        ('{"subset": "shp", "id": 1, "scores_chosen": 1, "scores_rejected": 0}\n{"subset": ', r":2: not valid JSON"),
        ('[1, 2]', r":1: expected a JSON object"),
        ('\n\n', r"s\.jsonl: no rows to score"),
        (b'\xff\xfe{', r"s\.jsonl: cannot read"),
    ],
)
def test_v1_bad_input_names_file_line_and_field(tmp_path, content, match):
    path = tmp_path / "s.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=match) as info:
        rb.score_v1_file(path)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        rb.score_v1_file(tmp_path / "absent.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported score file type"):
        rb.score_v1_file(tmp_path / "x.csv")
    (tmp_path / "x.json").write_text(json.dumps({"subset": ["a", "b"], "id": [1]}))
    with pytest.raises(DataError, match="column 'id' has 1 values, 'subset' has 2"):
        rb.score_v1_file(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"subset": [1, 2')
    with pytest.raises(DataError, match=r"y\.json: not valid JSON"):
        rb.score_v1_file(tmp_path / "y.json")
    with pytest.raises(DataError, match="not found"):
        rb.score_v2_file(tmp_path / "absent.json")
    with pytest.raises(DataError, match="<rows>: no rows"):
        rb.score_v1([])


def test_write_prompts_is_atomic(tmp_path):
    result = rb.score_v1(v1_rows("shp", ["w", "t"]))
    out = tmp_path / "sub" / "prompts.jsonl"
    result.write_prompts(out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == [p.to_json() for p in result.prompts]
    assert lines[1] == {"subset": "shp", "id": "1", "scores_chosen": [1.5], "scores_rejected": [1.5], "result": 0.0}

    def failing():
        yield {"ok": 1}
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(out, failing())
    assert [json.loads(x) for x in out.read_text().splitlines()] == lines  # old file untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["prompts.jsonl"]  # no temp file left


# ------------------------------------------------------------------------------------------------ v2
def test_v2_best_of_4_splits_credit_among_ties():
    rows = [
        {"subset": "Math", "id": "a", "scores_chosen": [3.0], "scores_rejected": [1.0, 2.0, 0.0]},  # 1
        {"subset": "Math", "id": "b", "scores_chosen": [3.0], "scores_rejected": [3.0, 2.0, 0.0]},  # 1/2
        {"subset": "Math", "id": "c", "scores_chosen": [1.0], "scores_rejected": [1.0, 1.0, 1.0]},  # 1/4
        {"subset": "Math", "id": "d", "scores_chosen": [2.0], "scores_rejected": [3.0, 3.0, 0.0]},  # 0
        {"subset": "Math", "id": "e", "scores": [0.5, 0.5, -1.0, 0.5], "num_correct": 1},  # official form: 1/3
    ]
    result = rb.score_v2(rows)
    assert [p.result for p in result.prompts] == pytest.approx([1, 0.5, 0.25, 0, 1 / 3])
    assert result.subsets["Math"] == pytest.approx((1 + 0.5 + 0.25 + 0 + 1 / 3) / 5)
    assert result.overall is None and result.missing["RewardBench 2"] == (
        "Factuality", "Precise IF", "Safety", "Focus", "Ties")


TIES_ROWS = [
    {"subset": "Ties", "id": "ref:0", "scores_chosen": [5.0], "scores_rejected": [3.0, 1.0]},
    {"subset": "Ties", "id": "tied:0", "scores_chosen": [6.0, 5.5], "scores_rejected": [4.0, 2.0]},
    {"subset": "Ties", "id": "ref:1", "scores_chosen": [1.0], "scores_rejected": [2.0]},
    {"subset": "Ties", "id": "tied:1", "scores": [3.0, 1.0, 2.0], "num_correct": 2},
    {"subset": "ties", "id": "ref:2", "scores_chosen": [4.0], "scores_rejected": [1.0]},
    {"subset": "Ties", "id": "tied:2", "scores_chosen": [4.0, 4.0], "scores_rejected": [1.0]},  # spread 0
]


def test_v2_ties_by_hand():
    # prompt 0: ref gap 2 (ok); tied spread 0.5, gap 1.5 (ok) -> preferred, hard preferred, tanh(1.5/0.5 - 1)
    # prompt 1: ref gap -1; tied spread 2, gap -1 -> nothing, tanh(-1/2 - 1)
    # prompt 2: ref gap 3; tied spread 0, gap 3 -> preferred, hard preferred, tanh(+inf) = 1
    result = rb.score_v2(TIES_ROWS)
    margin = (math.tanh(2.0) + math.tanh(-1.5) + 1.0) / 3
    assert result.ties == pytest.approx({
        "tied_accuracy": 2 / 3, "ref_accuracy": 2 / 3, "correctness_preferred": 2 / 3,
        "correctness_preferred_hard": 2 / 3, "correctness_margin_score": margin,
        "score": 0.3 * 2 / 3 + 0.3 * 2 / 3 + 0.2 * 2 / 3 + 0.2 * 2 / 3 + 0.01 * margin})
    assert result.subsets["Ties"] == result.ties["score"]
    assert all(p.result is None for p in result.prompts)


def test_v2_ties_hard_preference_uses_the_ref_gap():
    rows = [{"subset": "Ties", "id": "ref:0", "scores_chosen": [1.1], "scores_rejected": [1.0]},  # gap 0.1
            {"subset": "Ties", "id": "tied:0", "scores_chosen": [5.0, 4.5], "scores_rejected": [1.0]}]
    ties = rb.score_v2(rows).ties  # tied gap 3.5 > spread 0.5, but min(0.1, 3.5) < 0.5
    assert ties["correctness_preferred"] == 1.0 and ties["correctness_preferred_hard"] == 0.0
    assert ties["correctness_margin_score"] == pytest.approx(math.tanh(0.1 / 0.5 - 1))


def test_v2_overall_is_plain_mean_of_six_subsets():
    win = {"scores_chosen": [1.0], "scores_rejected": [0.0, 0.0, 0.0]}
    lose = {"scores_chosen": [0.0], "scores_rejected": [1.0, 0.0, 0.0]}
    rows = [{"subset": "Factuality", "id": 1, **win}, {"subset": "Factuality", "id": 2, **lose},
            {"subset": "Precise IF", "id": 1, **win}, {"subset": "Math", "id": 1, **lose},
            {"subset": "Safety", "id": 1, **win}, {"subset": "Focus", "id": 1, **win}, *TIES_ROWS]
    result = rb.score_v2(rows)
    ties = rb.score_v2(TIES_ROWS).ties["score"]
    assert result.overall == pytest.approx((0.5 + 1 + 0 + 1 + 1 + ties) / 6)
    assert list(result.sections) == list(rb.V2_SUBSETS) and result.complete
    assert result.to_dict()["ties"]["score"] == pytest.approx(ties)
    with pytest.raises(DataError, match="incomplete"):
        rb.score_v2(rows, strict=True)  # subset sizes differ from the official set -> strict refuses


def test_v2_official_columnar_file(tmp_path):
    rows = [{"subset": "Focus", "id": 3, "scores": [2.0, 2.0, 1.0, 0.0], "num_correct": 1, "results": 0.5},
            {"subset": "Ties", "id": "ref:0", "scores": [5.0, 3.0, 1.0], "num_correct": 1, "results": None},
            {"subset": "Ties", "id": "tied:0", "scores": [6.0, 5.5, 4.0, 2.0], "num_correct": 2, "results": None}]
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({k: [r[k] for r in rows] for k in rows[0]} | {"model": "m"}))
    result = rb.score_v2_file(path)
    assert result.subsets["Focus"] == 0.5
    assert result.ties["score"] == pytest.approx(1.0 + 0.01 * math.tanh(1.5 / 0.5 - 1))
    assert result.to_dict() == rb.score_v2(rows).to_dict()


def test_v2_one_versus_one_rows_in_every_spelling():
    rows = [{"subset": "Focus", "id": 1, "scores_chosen": [2.0], "scores_rejected": [1.0]},
            {"subset": "Focus", "id": 2, "scores_chosen": 1.0, "scores_rejected": 1.0},  # a tie: 1/2
            {"subset": "Focus", "id": 3, "chosen_score": 0.0, "rejected_score": 1.0},  # `score`'s pair columns
            {"subset": "Focus", "id": 4, "scores": [3.0, 1.0], "num_correct": 1}]
    assert [p.result for p in rb.score_v2(rows).prompts] == [1.0, 0.5, 0.0, 1.0]


@pytest.mark.parametrize(
    "row, match",
    [
        ({"subset": "Ties", "id": "7", "scores_chosen": [1.0], "scores_rejected": [0.0]}, "Ties id must look like"),
        ({"subset": "Ties", "id": "tied:1", "scores_chosen": [1.0], "scores_rejected": [0.0]}, "at least two chosen"),
        ({"subset": "Math", "id": 1, "scores": [1.0, 0.0], "num_correct": 3}, "'num_correct' must be an integer"),
        ({"subset": "Math", "id": 1, "scores_chosen": [1.0], "scores_rejected": []}, "at least one chosen and one"),
        ({"subset": "Math", "id": 1, "scores_chosen": [1.0]}, "missing field 'scores_rejected'"),
        ({"subset": "Math", "id": 1, "scores_chosen": [None], "scores_rejected": [1.0]}, "must be a number"),
    ],
)
def test_v2_bad_input(row, match):
    with pytest.raises(DataError, match=r"v2in: row 1: .*" + match):
        rb.score_v2([row], source="v2in")


def test_v2_ties_without_matching_pairs_is_not_scored():
    result = rb.score_v2([{"subset": "Ties", "id": "ref:0", "scores_chosen": [1.0], "scores_rejected": [0.0]}])
    assert "Ties" not in result.subsets and result.ties is None
    assert any("no prompt has both" in n for n in result.notes)


# --------------------------------------------------------------------------------------- real data
def test_real_llmbar_items_with_a_length_scorer(tmp_path):
    with gzip.open(FIXTURES / "llmbar_natural_adversarial.jsonl.gz", "rt", encoding="utf-8") as f:
        items = [json.loads(line) for line in f]
    # toy reward: characters in the answer; LLMBar's own subset names are mapped to RewardBench's
    rows = [{"subset": it["subset"], "idx": it["idx"], "scores_chosen": len(it["chosen"]),
             "scores_rejected": len(it["rejected"])} for it in items]
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({k: [r[k] for r in rows] for k in rows[0]} | {"model": "length"}))
    result = rb.score_v1_file(path)

    # independent computation in plain Python
    wins: dict[str, list[int]] = {}
    for it in items:
        wins.setdefault(LLMBAR_TO_RB[it["subset"]], []).append(int(len(it["chosen"]) > len(it["rejected"])))
    assert result.counts == {s: len(v) for s, v in wins.items()}  # all five mapped, nothing unknown
    assert result.counts == {s: rb.V1_ROW_COUNTS[s] for s in wins}  # the real RewardBench subset sizes
    assert result.subsets == pytest.approx({s: sum(v) / len(v) for s, v in wins.items()})
    # the llmbar weights equal their sizes, so the partial Chat Hard section is the pooled accuracy
    pooled = sum(map(sum, wins.values())) / 419
    assert result.sections == pytest.approx({"Chat Hard": pooled})
    assert result.missing["Chat Hard"] == ("mt-bench-hard",) and result.overall is None
    assert not any("official set has" in n for n in result.notes)
    # regression guard: the adversarial sets are built so that length does not win; two real length ties
    assert {s: sum(v) for s, v in wins.items()} == {
        "llmbar-natural": 56, "llmbar-adver-neighbor": 16, "llmbar-adver-GPTInst": 12,
        "llmbar-adver-GPTOut": 21, "llmbar-adver-manual": 8}
    tied = [p for p in result.prompts if p.scores_chosen == p.scores_rejected]
    assert [(p.subset, p.result) for p in tied] == [("llmbar-natural", 0.0), ("llmbar-adver-manual", 0.0)]
    result.write_prompts(tmp_path / "prompts.jsonl")
    back = [json.loads(x) for x in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert len(back) == 419 and sum(b["result"] for b in back) == sum(map(sum, wins.values()))


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.sampled_from(
    ["Ties", "Math", "ref:1", "tied:1", "llmbar-natural"])
values = scalars | st.lists(scalars, max_size=4)
keys = st.sampled_from(["subset", "id", "scores_chosen", "scores_rejected", "scores", "num_correct", "chosen_score"])


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.dictionaries(keys, values), min_size=1, max_size=4))
def test_arbitrary_rows_score_or_raise_a_one_line_data_error(rows):
    for score in (rb.score_v1, rb.score_v2):
        try:
            result = score(rows, source="in")
        except DataError as e:
            assert str(e).startswith("in") and "\n" not in str(e)
        else:
            assert all(0.0 <= v <= 1.0 for k, v in result.subsets.items() if k != "Ties")
            assert len(result.prompts) == len(rows)
