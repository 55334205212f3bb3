"""config.json -> DecoderConfig for hub-style (transformers 4) and transformers 5 configs."""

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

from predictor.errors import ArtifactError  # noqa: E402
from trainer_jax.models import config_from_dict  # noqa: E402
from trainer_jax.models.rope import inverse_frequencies  # noqa: E402

BASE = dict(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)


def test_llama32_hub_config_with_old_rope_fields():
    cfg = config_from_dict({
        **BASE, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        "tie_word_embeddings": True, "num_key_value_heads": 2,
    })
    assert (cfg.rope_type, cfg.rope_theta, cfg.rope_factor, cfg.rope_original_max_positions) == (
        "llama3", 500000.0, 32.0, 8192)
    assert cfg.tie_word_embeddings and cfg.num_kv_heads == 2 and cfg.head_dim == 16
    assert cfg.layer_windows == (None,) * 4 and not cfg.qkv_bias
    inv = inverse_frequencies(cfg)
    plain = 1.0 / 500000.0 ** (np.arange(0, 16, 2) / 16)
    assert inv[0] == pytest.approx(plain[0]) and inv[-1] == pytest.approx(plain[-1] / 32.0, rel=1e-6)


def test_linear_rope_old_type_key():
    cfg = config_from_dict({**BASE, "model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}})
    np.testing.assert_allclose(inverse_frequencies(cfg), 1.0 / 10000.0 ** (np.arange(0, 16, 2) / 16) / 2, rtol=1e-6)


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
    assert cfg.norm_offset and cfg.sandwich_norms and cfg.tie_word_embeddings and cfg.head_dim == 32


def test_unsupported_model_type_and_bad_fields():
    with pytest.raises(ArtifactError, match=r"unsupported model_type 'gpt2'.*supported architectures: .*Qwen2For"):
        config_from_dict({**BASE, "model_type": "gpt2"})
    with pytest.raises(ArtifactError, match="missing or has a bad field"):
        config_from_dict({"model_type": "llama", "hidden_size": 64})
