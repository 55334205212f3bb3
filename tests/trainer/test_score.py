"""trainer_jax.evals.score: every row scored in input order, formats, RewardBench sections, bad input errors."""

import functools
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from predictor.errors import ArtifactError, DataError  # noqa: E402
from trainer_jax.data.tokenizer import encode_chat, encode_text, load_tokenizer  # noqa: E402
from trainer_jax.evals.score import score_pairs  # noqa: E402
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
    {"id": 5, "chosen": "same", "rejected": "same"},  # a tie counts as wrong
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
    """Each sequence alone through the model: what score_pairs must reproduce, whatever its batching."""
    tok, model = _tokenizer_and_model()

    def reward(ids):
        padded = np.zeros((1, REFERENCE_T), np.int32)
        padded[0, : len(ids)] = ids
        return float(np.asarray(FORWARD(model, padded, (np.arange(REFERENCE_T) < len(ids))[None]))[0, 0])

    def turns(value, role):
        return [{"role": role, "content": value}] if isinstance(value, str) else value

    if "prompt" in row:
        prompt = turns(row["prompt"], "user")
        return tuple(reward(encode_chat(tok, prompt + turns(row[k], "assistant"))) for k in ("chosen", "rejected"))
    if isinstance(row["chosen"], str):
        return tuple(reward(encode_text(tok, row[k])) for k in ("chosen", "rejected"))
    return tuple(reward(encode_chat(tok, row[k])) for k in ("chosen", "rejected"))


def test_scores_every_row_in_order_any_batch_size(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    report = score_pairs(MODEL, data, out=tmp_path / "out" / "scores.jsonl", batch_size=2)
    lines = [json.loads(x) for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [1, 2, 3, 4, 5] and list(report.rows) == lines
    for row, line in zip(ROWS, lines):
        np.testing.assert_allclose([line["chosen_score"], line["rejected_score"]], _reference(row), atol=1e-5)
    assert lines[4]["chosen_score"] == lines[4]["rejected_score"]
    wins = sum(x["chosen_score"] > x["rejected_score"] for x in lines)
    assert report.n_pairs == 5 and report.accuracy == wins / 5 and report.rewardbench is None
    assert report.to_dict()["schema_version"] == 1
    other = score_pairs(MODEL, data, batch_size=3)  # different batch composition and padding
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
    report = score_pairs(MODEL, _write(tmp_path / "rb.jsonl", rows))
    rb = report.rewardbench
    assert rb.version == "v1" and set(rb.sections) == {"Chat", "Reasoning", "Safety"}
    assert rb.subsets["alpacaeval-easy"] == float(report.rows[0]["chosen_score"] > report.rows[0]["rejected_score"])
    assert [r["subset"] for r in report.rows] == ["alpacaeval-easy", "hep-python", "donotanswer"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"chosen": "a", "rejected": "b"}', "{oops"], r"pairs.jsonl:2: not valid JSON"),
        (['{"chosen": "a", "rejected": "b"}', "[1, 2]"], r"pairs.jsonl:2: expected a JSON object"),
        (['{"chosen": "a"}'], r"pairs.jsonl:1: missing field 'rejected'"),
        (['{"chosen": "a", "rejected": [{"role": "user"}]}'], r"pairs.jsonl:1: 'chosen' and 'rejected' must both"),
        (['{"prompt": 3, "chosen": "a", "rejected": "b"}'], r"pairs.jsonl:1: 'prompt', 'chosen' and 'rejected'"),
        (['{"chosen": "", "rejected": "b"}'], r"pairs.jsonl:1: 'chosen' encodes to no tokens"),
        (['{"chosen": "a", "rejected": "b", "subset": "shp"}', '{"chosen": "a", "rejected": "b"}'],
         r"pairs.jsonl:2: 'subset' missing"),
        ([], r"no rows to score"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        score_pairs(MODEL, _write(tmp_path / "pairs.jsonl", lines))


def test_missing_pairs_file_and_bad_batch_size(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        score_pairs(MODEL, tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="batch size"):
        score_pairs(MODEL, _write(tmp_path / "p.jsonl", ROWS[:1]), batch_size=0)


def _tokenizer_variant(tmp_path: Path, **config_changes) -> Path:
    out = tmp_path / "model"
    shutil.copytree(MODEL, out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.update(config_changes)
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def test_a_tokenizer_without_pad_or_eos_still_scores(tmp_path):
    """Scoring never reads pad ids (pooling comes from the mask): no pad token is needed."""
    neither = _tokenizer_variant(tmp_path / "b", pad_token=None, eos_token=None)
    assert load_tokenizer(neither).pad_token is None
    report = score_pairs(neither, _write(tmp_path / "pairs.jsonl", ROWS[:2]))
    assert report.n_pairs == 2


def test_chat_rows_need_a_chat_template(tmp_path):
    model = _tokenizer_variant(tmp_path)
    (model / "chat_template.jinja").unlink()
    data = _write(tmp_path / "pairs.jsonl", [ROWS[0], ROWS[1]])
    with pytest.raises(DataError, match=r"pairs.jsonl:2: .*no chat template"):
        score_pairs(model, data)


def test_chat_template_errors_name_the_line(tmp_path):
    model = _tokenizer_variant(tmp_path)
    (model / "chat_template.jinja").write_text("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(DataError, match=r"pairs.jsonl:1: .*rejected a user/assistant conversation \(roles must"):
        score_pairs(model, _write(tmp_path / "pairs.jsonl", [ROWS[1]]))


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ArtifactError, match="not a model directory: config.json is missing"):
        score_pairs(tmp_path, _write(tmp_path / "pairs.jsonl", ROWS[:1]))


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
    with pytest.raises(DataError, match="has 3 reward outputs; pass 3 weights"):
        score_pairs(model, data)
    report = score_pairs(model, data, weights=[1.0, 0.0, 0.5])  # = 2 r
    single = score_pairs(MODEL, data)
    for multi, one in zip(report.rows, single.rows):
        assert multi["chosen_score"] == pytest.approx(2 * one["chosen_score"], abs=1e-5)
        assert multi["rejected_scores"] == pytest.approx([one["rejected_score"], -one["rejected_score"],
                                                          2 * one["rejected_score"]], abs=1e-5)
