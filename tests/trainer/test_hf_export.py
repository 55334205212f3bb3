"""Export to HF *ForSequenceClassification: reload by trainer_jax and by transformers gives the same rewards."""

import json
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from tests.trainer.fixtures import make_fixtures as builders  # noqa: E402  (torch imported lazily)
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


@pytest.mark.parametrize(
    ("family", "kind", "num_labels"), [("llama", "causal", 2), ("phi3", "classifier", 1), ("gemma2", "causal", 1)]
)
def test_transformers_loads_export_unchanged(tmp_path, family, kind, num_labels):
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification

    builders.build_hf_model(family, kind, tmp_path / "src", seed=3)
    model = load_reward_model(tmp_path / "src", num_labels=num_labels, seed=1)
    out = export_reward_model(model, tmp_path / "rm", source_dir=tmp_path / "src")
    hf, info = AutoModelForSequenceClassification.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert hf.config.num_labels == num_labels
    with torch.no_grad():
        pos = torch.clamp(torch.cumsum(torch.tensor(MASK), -1) - 1, min=0)
        expected = hf.eval()(torch.tensor(IDS).long(), attention_mask=torch.tensor(MASK), position_ids=pos).logits
    np.testing.assert_allclose(np.asarray(forward(model, IDS, MASK)), expected.numpy(), rtol=0, atol=1e-4)
