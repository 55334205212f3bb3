"""trainer_jax.evals.score: every row scored in input order against a per-sequence reference that tokenizes
with transformers' own calls, RewardBench sections, a base model refused, bad input errors."""

import functools
import json
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from predictor.errors import ArtifactError, DataError  # noqa: E402
from trainer_jax.data.tokenizer import load_tokenizer  # noqa: E402
from trainer_jax.evals.score import score_file  # noqa: E402
from trainer_jax.models.hf_import import load_reward_model  # noqa: E402

MODEL = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
ROWS = [
    {"id": 1, "chosen": "The quick brown fox.", "rejected": "lazy dog"},
    {"id": 2, "prompt": "What is 1 + 2?", "chosen": "It is 3.", "rejected": "It is 10, and the square root is 4."},
    {
        "id": 3,
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}],
    },
    {"id": 4, "prompt": [{"role": "user", "content": "Add"}], "chosen": "def add(a, b): return a + b",
     "rejected": [{"role": "assistant", "content": "a - b"}]},
    {"id": 5, "chosen": "same", "rejected": "same"},  # identical sides: dropped and counted
]


def _write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


FORWARD = nnx.jit(lambda m, i, k: m(i, k))
REFERENCE_T = 64  # every reference sequence alone, right-padded to one length (one compilation)


@functools.lru_cache(maxsize=1)
def _tokenizer_and_model():
    return load_tokenizer(MODEL), load_reward_model(MODEL)


def _reference(row) -> tuple[float, float]:
    """Each sequence alone through the model, tokenized by transformers' own calls as TRL makes them (the chat
    template with tokenize=True for messages, tok(text=...) of the text plus EOS for strings): what score_file
    must reproduce, whatever its batching."""
    tok, model = _tokenizer_and_model()

    def reward(ids):
        padded = np.zeros((1, REFERENCE_T), np.int32)
        padded[0, : len(ids)] = ids
        return float(np.asarray(FORWARD(model, padded, (np.arange(REFERENCE_T) < len(ids))[None]))[0, 0])

    def turns(value, role):
        return [{"role": role, "content": value}] if isinstance(value, str) else value

    def chat(messages):
        return list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    def text(value):  # TRL's standard rows: add_eos, then processing_class(text=...)
        return list(tok(text=value + tok.eos_token)["input_ids"])

    if isinstance(row.get("prompt"), str) and isinstance(row["chosen"], str) and isinstance(row["rejected"], str):
        return tuple(reward(text(row["prompt"] + row[k])) for k in ("chosen", "rejected"))
    if "prompt" in row:
        prompt = turns(row["prompt"], "user")
        return tuple(reward(chat(prompt + turns(row[k], "assistant"))) for k in ("chosen", "rejected"))
    if isinstance(row["chosen"], str):
        return tuple(reward(text(row[k])) for k in ("chosen", "rejected"))
    return tuple(reward(chat(row[k])) for k in ("chosen", "rejected"))


def test_scores_every_row_in_order_any_batch_size(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    report = score_file(MODEL, data, out=tmp_path / "out" / "scores.jsonl", batch_size=2)
    lines = [json.loads(x) for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["1", "2", "3", "4"] and list(report.rows) == lines
    for row, line in zip(ROWS, lines):
        np.testing.assert_allclose([line["chosen_score"], line["rejected_score"]], _reference(row), atol=1e-5)
    wins = sum(x["chosen_score"] > x["rejected_score"] for x in lines)
    assert report.n_items == 4 and report.accuracy == wins / 4 and report.rewardbench is None
    assert report.counts["dropped_identical"] == 1 and report.schema == "trl"
    assert report.to_dict()["schema_version"] == 1
    other = score_file(MODEL, data, batch_size=3)  # different batch composition and padding
    np.testing.assert_allclose(
        [[x["chosen_score"], x["rejected_score"]] for x in other.rows],
        [[x["chosen_score"], x["rejected_score"]] for x in lines],
        atol=1e-6,
    )
    assert other.out_path is None


def test_rewardbench_sections_when_rows_carry_subsets(tmp_path):
    rows = [
        {"id": 10, "subset": "alpacaeval-easy", "prompt": "Say hi", "chosen": "Hi!", "rejected": "No."},
        {"id": 11, "subset": "hep-python", "prompt": "Add", "chosen": "return a + b", "rejected": "return a - b"},
        {"id": 12, "subset": "donotanswer", "prompt": "Harm?", "chosen": "I can't help.", "rejected": "Sure"},
    ]
    report = score_file(MODEL, _write(tmp_path / "rb.jsonl", rows))
    rb = report.rewardbench
    assert rb.version == "v1" and set(rb.sections) == {"Chat", "Reasoning", "Safety"}
    assert rb.subsets["alpacaeval-easy"] == float(report.rows[0]["chosen_score"] > report.rows[0]["rejected_score"])
    assert [r["subset"] for r in report.rows] == ["alpacaeval-easy", "hep-python", "donotanswer"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"chosen": "a", "rejected": "b"}', "{oops"], r"pairs.jsonl:2: not valid JSON"),
        (['{"chosen": "a", "rejected": "b"}', "[1, 2]"], r"pairs.jsonl:2: expected a JSON object"),
        (['{"chosen": "a"}'], r"pairs.jsonl:1: unknown row schema with columns \['chosen'\]"),
        (['{"chosen": "a", "rejected": [{"role": "user"}]}'], r"pairs.jsonl:1: columns 'chosen' and 'rejected' must both"),
        (['{"chosen": [{"role": "user"}], "rejected": [{"role": "user"}]}'], r"pairs.jsonl:1: column 'chosen'\[0\] must"),
        (['{"prompt": 3, "chosen": "a", "rejected": "b"}'], r"pairs.jsonl:1: column 'prompt' must be a string or a non-empty list"),
        (['{"chosen": "", "rejected": "b"}'], r"pairs.jsonl:1: column 'chosen' is empty"),
        (['{"prompt": "q", "chosen": "a", "rejected": "b", "subset": "shp"}', '{"prompt": "q", "chosen": "a", '
          '"rejected": "b"}'], r"pairs.jsonl:2: column 'subset' is missing for schema rewardbench"),
        ([], r"pairs.jsonl: no rows"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        score_file(MODEL, _write(tmp_path / "pairs.jsonl", lines))


def test_a_base_model_without_a_reward_head_is_refused(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
    import builders as B

    base = B.llama_base(tmp_path / "base")
    with pytest.raises(ArtifactError, match=r"LlamaForCausalLM: a base model without a trained reward head .*"
                                            r"`basepick train`"):
        score_file(base, _write(tmp_path / "pairs.jsonl", ROWS[:1]))


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ArtifactError, match="not a model directory: config.json is missing"):
        score_file(tmp_path, _write(tmp_path / "pairs.jsonl", ROWS[:1]))


def test_multi_output_model_needs_weights(tmp_path):
    from safetensors.numpy import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    tensors = load_file(str(model / "model.safetensors"))
    head = tensors["score.weight"]  # (1, D)
    tensors["score.weight"] = np.concatenate([head, -head, 2 * head])  # (3, D): r, -r, 2r
    save_file(tensors, str(model / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((model / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(3)}
    (model / "config.json").write_text(json.dumps(config))
    data = _write(tmp_path / "pairs.jsonl", ROWS[:2])
    with pytest.raises(DataError, match="has 3 reward outputs and records no merge weights; pass --weights"):
        score_file(model, data)
    report = score_file(model, data, weights=[1.0, 0.0, 0.5])  # = 2 r
    single = score_file(MODEL, data)
    for multi, one in zip(report.rows, single.rows):
        assert multi["chosen_score"] == pytest.approx(2 * one["chosen_score"], abs=1e-5)
        assert multi["rejected_scores"] == pytest.approx([one["rejected_score"], -one["rejected_score"],
                                                          2 * one["rejected_score"]], abs=1e-5)


def test_rewardbench2_rows_of_any_shape_one_versus_one_included(tmp_path):
    rows = [{"id": "1", "subset": "Focus", "prompt": "Hi", "chosen": ["Hello!"], "rejected": ["Go."],
             "num_correct": 1},
            {"id": "2", "subset": "Math", "prompt": "1+1?", "chosen": ["2"], "rejected": ["3", "4", "5"],
             "num_correct": 1},
            {"id": "tied:0", "subset": "Ties", "prompt": "Colour?", "chosen": ["Red.", "Blue."], "rejected": ["7"],
             "num_correct": 2},
            {"id": "ref:0", "subset": "Ties", "prompt": "Colour?", "chosen": ["Red."], "rejected": ["7", "x"],
             "num_correct": 1}]
    out = tmp_path / "scores.jsonl"
    report = score_file(MODEL, _write(tmp_path / "rb2.jsonl", rows), out=out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(len(x["scores_chosen"]), len(x["scores_rejected"])) for x in lines] == [(1, 1), (1, 3), (2, 1), (1, 2)]
    rb = report.rewardbench
    assert rb.version == "v2" and set(rb.sections) == {"Focus", "Math", "Ties"}
    from trainer_jax.evals import rewardbench

    assert rewardbench.score_v2_file(out).to_dict() == rb.to_dict()  # the written file rescored alike


def test_a_rewardbench_file_with_unknown_subsets_is_refused(tmp_path):
    rows = [{"id": 1, "subset": "alpacaeval-easy", "prompt": "Say hi", "chosen": "Hi!", "rejected": "No."},
            {"id": 2, "subset": "alpaca-easy", "prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}]
    with pytest.raises(DataError, match=r"1 subset name\(s\) not in RewardBench v1: 'alpaca-easy'"):
        score_file(MODEL, _write(tmp_path / "rb.jsonl", rows), out=tmp_path / "scores.jsonl")
    assert not (tmp_path / "scores.jsonl").exists()  # refused before anything is written
    own = [{**r, "subset": s} for r, s in zip(rows, ("mine", "yours"))]  # a subset column means RewardBench
    with pytest.raises(DataError, match="2 subset name.*'mine', 'yours'.*or rows without a 'subset'"):
        score_file(MODEL, _write(tmp_path / "own.jsonl", own))


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_shard_is_one_line_naming_it(tmp_path, damage):
    from trainer_jax.models.hf_export import export_reward_model

    _, model = _tokenizer_and_model()
    out = export_reward_model(model, tmp_path / "rm", source_dir=MODEL, shard_bytes=40_000)  # several shards
    shard = sorted(out.glob("model-*.safetensors"))[1]
    if damage == "missing":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:1000])
    cause = "weights file is missing" if damage == "missing" else "truncated or not a safetensors file"
    with pytest.raises(ArtifactError, match=rf"^{shard}: {cause}") as info:
        score_file(out, _write(tmp_path / "pairs.jsonl", ROWS[:1]), out=tmp_path / "scores.jsonl")
    assert "\n" not in str(info.value) and not (tmp_path / "scores.jsonl").exists()
