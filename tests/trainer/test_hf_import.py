"""Loading HF directories without torch: shards, bf16, sharding, strict key report, clear errors."""

import json
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import jax  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from trainer_jax.models.hf_import import (  # noqa: E402
    load_causal_lm,
    load_reward_model,
    read_model_dir,
)

GOLDEN = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
IDS = np.array([[0, 0, 11, 12, 13, 14], [21, 22, 23, 24, 25, 26]], np.int32)  # (B, T), row 0 left-padded
MASK = (np.arange(6)[None, :] >= np.array([[2], [0]])).astype(np.int32)  # (B, T)
forward = nnx.jit(lambda model, ids, mask: model(ids, mask))


def _copy(tmp_path: Path, edit=None) -> Path:
    """A copy of the golden classifier dir, its tensors passed through ``edit(dict) -> dict``."""
    out = tmp_path / "model"
    shutil.copytree(GOLDEN, out)
    if edit is not None:
        tensors = edit(load_file(str(out / "model.safetensors")))
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def _edit_config(path: Path, **changes) -> None:
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_sharded_bf16_and_sharding_load_the_same_model(tmp_path):
    reference = np.asarray(forward(load_reward_model(GOLDEN), IDS, MASK))
    out = _copy(tmp_path)
    tensors = load_file(str(out / "model.safetensors"))
    (out / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(out / file), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    model = load_reward_model(out, sharding=lambda path, abstract: sharding)
    np.testing.assert_array_equal(np.asarray(forward(model, IDS, MASK)), reference)

    bf16 = _copy(tmp_path / "bf16", lambda t: {k: v.astype(ml_dtypes.bfloat16) for k, v in t.items()})
    model = load_reward_model(bf16, param_dtype="float32")
    assert model.model.embed_tokens.embedding[...].dtype == np.float32
    np.testing.assert_allclose(np.asarray(forward(model, IDS, MASK)), reference, atol=0.05)


def _two_shards(tmp_path: Path) -> Path:
    out = _copy(tmp_path)
    tensors = load_file(str(out / "model.safetensors"))
    (out / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(out / file), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    return out


@pytest.mark.parametrize("damage", ["missing", "truncated", "not listed"])
def test_a_damaged_shard_is_one_error_line_naming_it_and_nothing_is_written(run, tmp_path, damage):
    """`train` on a base whose index names a missing file, whose shard is cut short, or whose shard lacks a
    tensor the index puts there: exit 2, one Error line naming the file, no run directory."""
    from tests.conftest import assert_one_line_error

    base = _two_shards(tmp_path)
    shard = base / "model-00002-of-00002.safetensors"
    if damage == "missing":
        shard.unlink()
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:-100])
    else:  # the index moves a tensor of shard 1 to shard 2
        index = json.loads((base / "model.safetensors.index.json").read_text())
        moved = next(k for k, v in index["weight_map"].items() if v != shard.name)
        index["weight_map"][moved] = shard.name
        (base / "model.safetensors.index.json").write_text(json.dumps(index))
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("train", base, "--recipe", "bradley_terry", "--data", data, "--eval-data", data,
                 "--out", tmp_path / "run")
    assert_one_line_error(result, str(shard))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_read_model_dir_reports_architecture_and_labels():
    src = read_model_dir(GOLDEN)
    assert src.architecture == "Qwen2ForSequenceClassification"
    assert src.is_classifier and src.num_labels == 1 and src.config.family == "qwen2"


def test_missing_tensor_is_named(tmp_path):
    key = "model.layers.1.self_attn.q_proj.bias"
    out = _copy(tmp_path, lambda t: {k: v for k, v in t.items() if k != key})
    with pytest.raises(ArtifactError, match=r"1 missing tensors \(model\.layers\.1\.self_attn\.q_proj\.bias\)"):
        load_reward_model(out)


def test_unexpected_tensor_is_named(tmp_path):
    out = _copy(tmp_path, lambda t: {**t, "model.layers.9.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(ArtifactError, match=r"unexpected tensors \(model\.layers\.9\.extra\.weight\)"):
        load_reward_model(out)


def test_mismatched_shape_is_named(tmp_path):
    out = _copy(tmp_path)
    _edit_config(out, intermediate_size=48)
    with pytest.raises(ArtifactError, match=r"wrong shape \(model\.layers\.0\.mlp\.gate_proj\.weight \(64, 32\)"):
        load_reward_model(out)


def test_num_labels_mismatch(tmp_path):
    with pytest.raises(ArtifactError, match="has 1 reward outputs, not the 5"):
        load_reward_model(GOLDEN, num_labels=5)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ArtifactError, match="is not a directory"):
        load_reward_model(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="config.json is missing"):
        load_reward_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_reward_model(tmp_path)


def test_unsupported_architecture_names_supported_ones(tmp_path):
    out = _copy(tmp_path)
    _edit_config(out, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    with pytest.raises(ArtifactError, match=r"unsupported architecture 'GPT2LMHeadModel'; supported: .*LlamaFor"):
        load_reward_model(out)


def test_unsupported_rope_type(tmp_path):
    out = _copy(tmp_path)
    _edit_config(out, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0})
    with pytest.raises(ArtifactError, match="unsupported rope type 'yarn'"):
        load_reward_model(out)


def test_no_safetensors(tmp_path):
    out = _copy(tmp_path)
    (out / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="no \\*.safetensors weights"):
        load_reward_model(out)


def test_untied_classifier_has_no_lm_head(tmp_path):
    out = _copy(tmp_path)
    _edit_config(out, tie_word_embeddings=False)
    with pytest.raises(ArtifactError, match="no LM head"):
        load_causal_lm(out)


def test_gemma3_multimodal_checkpoint_in_either_layout(tmp_path):
    """Gemma 3 from 4B up ships as Gemma3ForConditionalGeneration with the decoder under
    ``language_model.model.`` next to a vision tower (what transformers 5.25 saves, too); transformers 4.5x
    saved it under ``model.language_model.``. The decoder loads from either layout, the vision weights are
    skipped, and a stray tensor inside the decoder is still reported."""
    pytest.importorskip("torch")
    from tests.trainer.fixtures import make_fixtures as builders

    builders.build_hf_model("gemma3_multimodal", "causal", tmp_path / "published", seed=2)
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "published", moved)
    tensors = load_file(str(moved / "model.safetensors"))
    assert any(k.startswith("vision_tower.") for k in tensors) and "language_model.model.norm.weight" in tensors
    renamed = {("model." + k if k.startswith(("vision_tower.", "multi_modal_projector.")) else
                k.replace("language_model.model.", "model.language_model.")): v for k, v in tensors.items()}
    save_file(renamed, str(moved / "model.safetensors"), metadata={"format": "pt"})
    assert (read_model_dir(tmp_path / "published").prefix, read_model_dir(moved).prefix) == (
        "language_model.model", "model.language_model")
    ids, mask = builders.padded_batch((5, 40, 17), "right", seed=3)
    a, b = load_reward_model(tmp_path / "published", seed=1), load_reward_model(moved, seed=1)
    np.testing.assert_array_equal(np.asarray(forward(a, ids, mask)), np.asarray(forward(b, ids, mask)))
    stray = "model.language_model.layers.9.extra.weight"
    save_file({**renamed, stray: np.zeros(3, np.float32)}, str(moved / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ArtifactError, match=rf"unexpected tensors \({re.escape(stray)}\)"):
        load_reward_model(moved)
