"""Export to HF *ForSequenceClassification: reload by trainer_jax and by transformers gives the same rewards."""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from tests.trainer.fixtures import make_fixtures as builders  # noqa: E402  (torch imported lazily)
from trainer_jax.models.families import FAMILIES  # noqa: E402
from trainer_jax.models.hf_export import export_reward_model  # noqa: E402
from trainer_jax.models.hf_import import load_reward_model  # noqa: E402

GOLDEN = Path(__file__).parent / "fixtures" / "models" / "gemma2-rm"
IDS = np.array([[0, 0, 0, 11, 12, 13, 14], [21, 22, 23, 24, 25, 26, 27]], np.int32)  # (B, T)
MASK = (IDS != 0).astype(np.int32)  # (B, T); test rows hold no pad id inside
forward = nnx.jit(lambda model, ids, mask: model(ids, mask))


def test_export_round_trip_without_torch(tmp_path):
    model = load_reward_model(GOLDEN)
    out = export_reward_model(model, tmp_path / "rm", source_dir=GOLDEN)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Gemma2ForSequenceClassification"]
    assert config["num_labels"] == 1 and config["pad_token_id"] == 0 and config["id2label"] == {"0": "LABEL_0"}
    assert (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    reloaded = load_reward_model(out)
    np.testing.assert_array_equal(np.asarray(forward(reloaded, IDS, MASK)), np.asarray(forward(model, IDS, MASK)))

    with pytest.raises(ArtifactError, match="already exists"):
        export_reward_model(model, out, source_dir=GOLDEN)
    export_reward_model(model, out, source_dir=GOLDEN, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rm"]


EXPORTS = [("llama", "causal", 2), ("phi3", "classifier", 1), ("gemma2", "causal", 1), ("qwen3", "causal", 1),
           ("gemma3", "causal", 1), ("gemma3_multimodal", "causal", 1), ("olmo2", "causal", 1),
           ("olmo3", "classifier", 1), ("smollm3", "causal", 1), ("gemma", "causal", 1), ("stablelm", "causal", 1),
           ("nemotron", "causal", 2), ("ministral", "causal", 1)]


@pytest.mark.parametrize(("family", "kind", "num_labels"), EXPORTS)
def test_transformers_loads_export_unchanged(tmp_path, family, kind, num_labels):
    """transformers' AutoModelForSequenceClassification loads the export with no key left over and gives our
    rewards on a batch of rows padded on the left (5, 40 and 17 tokens: longer than the 6-token windows)."""
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification

    builders.build_hf_model(family, kind, tmp_path / "src", seed=3)
    model = load_reward_model(tmp_path / "src", num_labels=num_labels, seed=1)
    out = export_reward_model(model, tmp_path / "rm", source_dir=tmp_path / "src")
    hf, info = AutoModelForSequenceClassification.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert hf.config.num_labels == num_labels
    assert type(hf).__name__ == FAMILIES[model.cfg.family].classifier  # Gemma 3: Gemma3TextForSequenceClassification
    ids, mask = builders.padded_batch((5, 40, 17), "left", seed=6)  # pad id 0, the export's pad token
    with torch.no_grad():
        pos = torch.clamp(torch.cumsum(torch.tensor(mask), -1) - 1, min=0)
        expected = hf.eval()(torch.tensor(ids).long(), attention_mask=torch.tensor(mask), position_ids=pos).logits
    np.testing.assert_allclose(np.asarray(forward(model, ids, mask)), expected.numpy(), rtol=0, atol=1e-4)


def _no_pad_base(tmp_path: Path) -> Path:
    """The tiny Llama base with its pad token removed: pad would fall back to eos, which its chat
    template puts at the end of every turn (as Llama-3-Instruct's and Mistral's do)."""
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
    import builders as B

    base = B.llama_base(tmp_path / "base")
    for name in ("tokenizer_config.json", "config.json"):
        config = json.loads((base / name).read_text())
        config.pop("pad_token", None)
        config.pop("pad_token_id", None)
        (base / name).write_text(json.dumps(config))
    assert "eos_token }}{% endfor" in (base / "chat_template.jinja").read_text()
    return base


ROWS = [{"prompt": [{"role": "user", "content": "the quick brown"}], "chosen": "fox jumps", "rejected": "dog"},
        {"prompt": [{"role": "user", "content": "rank answers"}], "chosen": "reward models rank answers chosen",
         "rejected": "one"},  # message prompts: chat-template turns that end with eos (TRL text rows would be raw)
        {"prompt": [{"role": "user", "content": "square root"}], "chosen": "help", "rejected": "refuse harmful requests"}]


def test_transformers_pools_where_basepick_does_without_a_pad_token(tmp_path):
    """No pad token and turns that end with eos: the export declares a pad that never occurs in text, so
    transformers' batched, padded rewards equal `basepick score`'s; pad == eos would move its pooling."""
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainer_jax.data.encode import tokenize_items
    from trainer_jax.data.schemas import read_examples
    from trainer_jax.data.tokenizer import choose_pad_token, load_tokenizer
    from trainer_jax.evals.score import score_file

    base = _no_pad_base(tmp_path)
    tok = load_tokenizer(base)
    assert tok.pad_token is None
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    encoded, _ = tokenize_items(read_examples(data, "score").items, tok, 2048)
    used = {i for seqs in encoded for ids in seqs for i in ids}
    pad = choose_pad_token(tok, 300, used)
    assert pad.id not in used and pad.id != tok.eos_token_id
    model = load_reward_model(base, seed=4)
    out = export_reward_model(model, tmp_path / "rm", source_dir=base, pad=pad)
    ours = [r["chosen_score"] for r in score_file(out, data).rows]

    hf_tok = AutoTokenizer.from_pretrained(str(out))
    assert hf_tok.pad_token_id == pad.id == json.loads((out / "config.json").read_text())["pad_token_id"]
    texts = []
    for row in ROWS:
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        texts.append(hf_tok.apply_chat_template(prompt + [{"role": "assistant", "content": row["chosen"]}], tokenize=False))
    batch = hf_tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")  # rows of unequal length
    assert (batch["input_ids"][:, -1] == pad.id).any() and (batch["input_ids"] == tok.eos_token_id).any()
    hf = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        theirs = hf(**batch).logits[:, 0].numpy()
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)
        hf.config.pad_token_id = tok.eos_token_id  # what a pad == eos export would do
        wrong = hf(**{**batch, "input_ids": torch.where(batch["attention_mask"] == 1, batch["input_ids"],
                                                        tok.eos_token_id)}).logits[:, 0].numpy()
    assert np.abs(wrong - np.asarray(ours)).max() > 1e-2  # the test can see the bug it guards against


def test_pad_token_choice_rules(tmp_path):
    from trainer_jax.data.tokenizer import NEW_PAD_TOKEN, choose_pad_token, load_tokenizer

    tok = load_tokenizer(_no_pad_base(tmp_path))
    by_name = choose_pad_token(tok, 300)
    assert (by_name.token, by_name.added) == ("<pad>", False)  # a special token named for padding
    fresh = choose_pad_token(tok, 300, used_ids={by_name.id})
    assert (fresh.token, fresh.id, fresh.added) == (NEW_PAD_TOKEN, len(tok), True)  # an unused embedding row
    with pytest.raises(ArtifactError, match="cannot give the exported model a pad token"):
        choose_pad_token(tok, len(tok), used_ids={by_name.id})  # no spare row, every candidate taken


def test_large_exports_are_split_into_indexed_files(tmp_path):
    model = load_reward_model(GOLDEN)
    out = export_reward_model(model, tmp_path / "rm", source_dir=GOLDEN, shard_bytes=40_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert not (out / "model.safetensors").exists()
    assert index["metadata"]["total_size"] == sum((out / f).stat().st_size for f in files)
    reloaded = load_reward_model(out)
    np.testing.assert_array_equal(np.asarray(forward(reloaded, IDS, MASK)), np.asarray(forward(model, IDS, MASK)))


def test_a_regression_head_is_folded_into_one_reward_or_kept_with_its_weights(tmp_path):
    """Default: score.weight becomes w @ W, so any tool reads the merged reward; --attribute-head keeps the
    five outputs, names them, and records the weights that `basepick score` then applies."""
    from trainer_jax.evals.score import score_file

    names = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    merge = dict(zip(names, (0.4, 0.3, 0.1, 0.05, -0.15)))
    five = load_reward_model(GOLDEN.parent.parent / "train" / "llama-base", num_labels=5, seed=3)
    src = GOLDEN.parent.parent / "train" / "llama-base"
    folded = load_reward_model(export_reward_model(five, tmp_path / "folded", source_dir=src, merge=merge))
    kept_dir = export_reward_model(five, tmp_path / "kept", source_dir=src, merge=merge, fold=False)
    config = json.loads((kept_dir / "config.json").read_text())
    assert config["num_labels"] == 5 and list(config["id2label"].values()) == list(names)
    assert config["basepick_merge_weights"] == merge and folded.num_labels == 1
    outputs = np.asarray(forward(five, IDS, MASK))  # (B, 5)
    np.testing.assert_allclose(np.asarray(forward(folded, IDS, MASK))[:, 0], outputs @ np.array(list(merge.values())),
                               rtol=0, atol=1e-5)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "the quick", "chosen": "brown fox", "rejected": "lazy dog"}) + "\n")
    a, b = score_file(tmp_path / "folded", data).rows[0], score_file(kept_dir, data).rows[0]
    assert a["chosen_score"] == pytest.approx(b["chosen_score"], abs=1e-5) and len(b["chosen_scores"]) == 5


def test_exports_and_label_files_follow_the_umask(tmp_path):
    import os

    from trainer_jax.evals.labels import append_label

    old = os.umask(0o022)
    try:
        out = export_reward_model(load_reward_model(GOLDEN), tmp_path / "rm", source_dir=GOLDEN)
        append_label(tmp_path / "labels.csv", {"model_id": "a/b", "recipe": "regression", "train_data": "d",
                                               "eval": "rewardbench-v1", "chat": 80.0, "chat_hard": 60.0,
                                               "safety": 70.0, "reasoning": 90.0, "score": 75.0})
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}
    assert (tmp_path / "labels.csv").stat().st_mode & 0o777 == 0o644
