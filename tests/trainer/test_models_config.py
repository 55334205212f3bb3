"""config.json -> DecoderConfig for hub-style (transformers 4) and transformers 5 configs."""

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from trainer_jax.models import config_from_dict  # noqa: E402
from trainer_jax.models.rope import inverse_frequencies  # noqa: E402

BASE = dict(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4)  # absent, transformers' default of each class would apply (Qwen2: 32)


def test_llama32_hub_config_with_old_rope_fields():
    cfg = config_from_dict({
        **BASE, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        "tie_word_embeddings": True, "num_key_value_heads": 2,
    })
    rope = cfg.layer_ropes[0]
    assert cfg.layer_ropes == (rope,) * 4
    assert (rope.kind, rope.theta, rope.factor, rope.original_max_positions) == ("llama3", 500000.0, 32.0, 8192)
    assert cfg.tie_word_embeddings and cfg.num_kv_heads == 2 and cfg.head_dim == 16
    assert cfg.layer_windows == (None,) * 4 and not cfg.qkv_bias
    inv = inverse_frequencies(rope, 16)
    plain = 1.0 / 500000.0 ** (np.arange(0, 16, 2) / 16)
    assert inv[0] == pytest.approx(plain[0]) and inv[-1] == pytest.approx(plain[-1] / 32.0, rel=1e-6)


def test_linear_rope_old_type_key():
    cfg = config_from_dict({**BASE, "model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}})
    expected = 1.0 / 10000.0 ** (np.arange(0, 16, 2) / 16) / 2
    np.testing.assert_allclose(inverse_frequencies(cfg.layer_ropes[0], 16), expected, rtol=1e-6)


def test_qwen2_sliding_window_only_when_enabled():
    off = config_from_dict({**BASE, "model_type": "qwen2", "sliding_window": 131072, "use_sliding_window": False})
    assert off.layer_windows == (None,) * 4 and off.qkv_bias and not off.o_bias
    on = config_from_dict({**BASE, "model_type": "qwen2", "sliding_window": 8, "use_sliding_window": True,
                           "max_window_layers": 2})
    assert on.layer_windows == (None, None, 8, 8)


def test_mistral_window_on_every_layer():
    cfg = config_from_dict({**BASE, "model_type": "mistral", "sliding_window": 4096})
    assert cfg.layer_windows == (4096,) * 4


def test_gemma2_defaults_without_layer_types():
    cfg = config_from_dict({**BASE, "model_type": "gemma2", "head_dim": 32, "query_pre_attn_scalar": 144,
                            "sliding_window": 16, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
                            "hidden_activation": "gelu_pytorch_tanh"})
    assert cfg.layer_windows == (16, None, 16, None)  # even layers slide, as transformers does
    assert cfg.query_scale == pytest.approx(144**-0.5) and cfg.embed_scale == pytest.approx(8.0)
    assert cfg.norm == "rms_1p" and cfg.block_norms == "sandwich" and cfg.tie_word_embeddings and cfg.head_dim == 32


def test_gemma3_published_multimodal_config_takes_transformers_defaults():
    """google/gemma-3-12b-it's config.json gives a handful of text_config fields; the rest are Gemma3TextConfig's
    defaults (head_dim 256, query_pre_attn_scalar 256, local RoPE base 10000, 5 local : 1 global layers)."""
    cfg = config_from_dict({
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
        "text_config": {"hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
                        "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
                        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "num_hidden_layers": 27},
    })
    assert (cfg.family, cfg.head_dim, cfg.vocab_size, cfg.num_layers) == ("gemma3", 256, 262208, 48)
    assert cfg.layer_windows == ((1024,) * 5 + (None,)) * 8
    local, global_ = cfg.layer_ropes[0], cfg.layer_ropes[5]
    assert (local.theta, local.kind) == (10000.0, "default")
    assert (global_.theta, global_.kind, global_.factor) == (1000000.0, "linear", 8.0)
    assert cfg.query_scale == pytest.approx(256**-0.5) and cfg.embed_scale == pytest.approx(3840**0.5)
    assert cfg.qk_norm == "head" and cfg.norm == "rms_1p" and cfg.tie_word_embeddings


@pytest.mark.parametrize(("model_type", "fields", "switches"), [
    ("qwen3", {"head_dim": 32}, dict(qk_norm="head", head_dim=32, qkv_bias=False, tie_word_embeddings=False)),
    ("olmo2", {}, dict(qk_norm="proj", norm="rms_f32", block_norms="post")),
    ("smollm3", {"no_rope_layer_interval": 2}, dict(tie_word_embeddings=True)),
    ("stablelm", {"use_qkv_bias": True}, dict(norm="layer", qkv_bias=True, o_bias=False, partial_rotary_factor=0.25)),
    ("nemotron", {}, dict(norm="layer_1p", gated_mlp=False, hidden_act="relu2", partial_rotary_factor=0.5)),
    ("gemma", {"hidden_act": "gelu"}, dict(norm="rms_1p", hidden_act="gelu_pytorch_tanh", head_dim=256)),
])
def test_new_families_switches(model_type, fields, switches):
    cfg = config_from_dict({**BASE, "model_type": model_type, **fields})
    assert {k: getattr(cfg, k) for k in switches} == switches
    if model_type == "smollm3":  # every 2nd layer without RoPE
        assert [r is None for r in cfg.layer_ropes] == [False, True, False, True]


def test_unsupported_model_type_and_bad_fields():
    with pytest.raises(ArtifactError, match=r"unsupported model_type 'gpt2'.*supported architectures: .*Qwen2For"):
        config_from_dict({**BASE, "model_type": "gpt2"})
    with pytest.raises(ArtifactError, match="missing or has a bad field|not valid"):
        config_from_dict({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": "two"})


@pytest.mark.parametrize(("fields", "message"), [
    ({"model_type": "mixtral", "num_local_experts": 8},
     "mixture-of-experts models are not supported (model_type 'mixtral')"),
    ({"model_type": "qwen3_moe"}, "mixture-of-experts"),
    ({"model_type": "olmoe"}, "mixture-of-experts"),
    ({"model_type": "qwen3", "num_experts": 64}, "dense qwen3 model declares experts (num_experts=64)"),
    ({"model_type": "llama", "num_key_value_heads": 3},
     "num_attention_heads 4 is not a multiple of num_key_value_heads 3"),
    ({"model_type": "qwen3", "head_dim": 16, "num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
    ({"model_type": "qwen3", "head_dim": 16, "intermediate_size": 0}, "sizes must be positive (intermediate_size=0)"),
    ({"model_type": "qwen3", "head_dim": 16, "vocab_size": -5}, "vocab_size=-5"),
    ({"model_type": "gemma3_text", "head_dim": 16, "sliding_window": 0}, "sliding_window=0"),
    ({"model_type": "llama", "num_hidden_layers": 0}, "num_hidden_layers=0"),
    ({"model_type": "llama", "num_attention_heads": 5}, "not valid"),  # transformers: 64 not a multiple of 5
    ({"model_type": "stablelm", "qk_layernorm": True}, "sets qk_layernorm, which basepick does not implement"),
])
def test_moe_and_contradictory_configs_are_refused_in_one_line(fields, message):
    with pytest.raises(ArtifactError) as info:
        config_from_dict({**BASE, **fields})
    assert message in str(info.value) and "\n" not in str(info.value)
