"""`basepick train --dry-run`: memory per device from config.json alone, the verdict, and what would fit."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
REPO = Path(__file__).resolve().parents[2]
GIB = 2**30


def _base(tmp_path: Path, name: str) -> Path:
    """A directory holding only config.json: the dry run must not need weights or a tokenizer."""
    out = tmp_path / name
    out.mkdir()
    shutil.copy(CONFIGS / f"{name}.json", out / "config.json")
    return out


def _dry(run, base, *extra):
    return run("train", str(base), "--recipe", "bradley_terry", "--dry-run", "--device-memory", "80",
               "--format", "json", *extra)


@pytest.mark.parametrize("name", ["qwen2.5-0.5b-instruct", "llama-3.2-1b-instruct"])
def test_small_models_fit_one_80gb_gpu_with_30_percent_headroom(run, tmp_path, name):
    result = _dry(run, _base(tmp_path, name), "--platform", "gpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    parts = report["per_device_bytes"]
    assert report["fits"] and report["headroom"] >= 0.30
    assert parts["total"] >= sum(parts[k] for k in ("params", "optimizer", "gradients", "activations"))
    assert 3 * parts["params"] <= parts["optimizer"] < 3 * parts["params"] + 1024  # mu, nu, accumulator; counters
    assert report["attention"] == "cudnn" and report["remat"] == "full" and report["mesh"]["devices"] == 1
    assert report["compiled_shapes"]["train_step"] == [[16, t] for t in (256, 512, 1024, 1536, 2048)]
    assert report["tokens_per_optimizer_step"] == {"rows": 128, "padded_tokens_at_longest_bucket": 128 * 2048}
    assert "per-token model" in report["method"]  # the output says how the estimate was made


def test_llama_8b_does_not_fit_one_gpu_and_says_what_would(run, tmp_path):
    result = _dry(run, _base(tmp_path, "llama-3.1-8b-instruct"), "--platform", "gpu")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["fits"] and report["per_device_bytes"]["params"] > 28 * 10**9  # 7.5B fp32 master weights
    changes = [s["change"] for s in report["suggestions"]]
    assert changes and "on fsdp" in changes[-1]
    assert result.stderr.strip().splitlines()[-1].startswith("Error: the run does not fit:")
    assert list(tmp_path.iterdir()) == [tmp_path / "llama-3.1-8b-instruct"]  # nothing written


def test_llama_8b_fits_on_eight_devices(run, tmp_path):
    result = _dry(run, _base(tmp_path, "llama-3.1-8b-instruct"), "--platform", "gpu", "--devices", "8")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fits"] and report["mesh"] == {"platform": "gpu", "devices": 8, "data": 1, "fsdp": 8}


def test_eight_simulated_devices_are_the_mesh_the_run_would_use(tmp_path):
    """Without --devices, the dry run plans for this machine's devices: 8 fake CPU devices here."""
    base = _base(tmp_path, "llama-3.1-8b-instruct")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    code = ("import sys; sys.path.insert(0, %r); from cli import main; main()" % str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, "train", str(base), "--recipe", "bradley_terry", "--dry-run",
                           "--device-memory", "80", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["mesh"] == {"platform": "cpu", "devices": 8, "data": 1, "fsdp": 8} and report["attention"] == "xla"
    assert report["fits"]


def test_remat_and_micro_batch_are_offered_when_they_would_fit(run, tmp_path):
    base = _base(tmp_path, "llama-3.2-1b-instruct")
    result = _dry(run, base, "--platform", "gpu", "--remat", "none", "--device-memory", "60")
    assert result.exit_code == 1
    changes = [s["change"] for s in json.loads(result.stdout)["suggestions"]]
    assert changes[0] == "--remat full" and any(c.startswith("--micro-batch") for c in changes)
    for s in json.loads(result.stdout)["suggestions"]:
        assert s["total_bytes"] <= 60e9
    full = json.loads(_dry(run, base, "--platform", "cpu").stdout)["per_device_bytes"]["activations"]
    none = json.loads(_dry(run, base, "--platform", "cpu", "--remat", "none", "--device-memory", "900").stdout)
    assert none["per_device_bytes"]["activations"] > 4 * full  # keeping every layer's values costs


def test_unsupported_architecture_is_one_line_exit_2(run, tmp_path):
    base = tmp_path / "gpt2"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}))
    result = _dry(run, base)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unsupported architecture 'GPT2LMHeadModel'" in result.stderr
    assert sorted(p.name for p in base.iterdir()) == ["config.json"]


def test_cpu_devices_fall_back_to_host_memory_and_say_so(run, tmp_path):
    base = _base(tmp_path, "qwen2.5-0.5b-instruct")
    result = run("train", str(base), "--recipe", "bradley_terry", "--dry-run", "--format", "json")
    assert result.exit_code in (0, 1), result.output  # fits or not: a verdict, never a usage error
    report = json.loads(result.stdout)
    assert report["device_memory_bytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert report["device_memory_source"].startswith("host memory")
    assert "host memory" in run("train", str(base), "--recipe", "bradley_terry", "--dry-run").stdout


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-3"])
def test_device_memory_must_be_a_positive_finite_size(run, tmp_path, value):
    from tests.conftest import assert_one_line_error

    result = run("train", str(_base(tmp_path, "qwen2.5-0.5b-instruct")), "--recipe", "bradley_terry", "--dry-run",
                 f"--device-memory={value}")
    assert_one_line_error(result, "--device-memory")


def _transformers_parameters(hf_config: dict) -> int:
    """What transformers' own *ForSequenceClassification (1 label) of this config.json holds, built on the meta
    device (no memory), for a multimodal config its text decoder's."""
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForSequenceClassification

    config = CONFIG_MAPPING[hf_config["model_type"]].from_dict(hf_config).get_text_config()
    config.num_labels = 1
    with torch.device("meta"):
        return sum(p.numel() for p in AutoModelForSequenceClassification.from_config(config).parameters())


@pytest.mark.parametrize("name", ["qwen3-8b", "gemma-3-12b-it", "olmo-2-1124-13b-instruct", "llama-3.1-8b-instruct"])
def test_parameter_bytes_are_exact_for_published_configs(run, tmp_path, name):
    pytest.importorskip("torch")
    result = _dry(run, _base(tmp_path, name), "--platform", "gpu", "--devices", "1")
    assert result.exit_code == 1, result.output  # 7.5B and up do not fit one 80 GB device
    report = json.loads(result.stdout)
    count = _transformers_parameters(json.loads((CONFIGS / f"{name}.json").read_text()))
    assert report["model"]["parameters"] == count and report["per_device_bytes"]["params"] == 4 * count


@pytest.mark.parametrize("family", ["qwen3", "gemma3", "gemma3_multimodal", "olmo2", "olmo3", "smollm3", "gemma",
                                    "stablelm", "nemotron", "ministral"])
def test_parameter_bytes_are_exact_for_each_family(run, tmp_path, family):
    """One device: the dry run's fp32 parameter bytes are 4 x transformers' parameter count, exactly."""
    pytest.importorskip("torch")
    from tests.trainer.fixtures import make_fixtures as builders
    from trainer_jax.models.families import FAMILIES, MODEL_TYPES

    base = tmp_path / family
    base.mkdir()
    hf_config = builders.hf_config(family).to_dict()
    prefix = FAMILIES[MODEL_TYPES[hf_config["model_type"]]].prefix
    hf_config["architectures"] = [f"{prefix}ForConditionalGeneration" if family.endswith("multimodal")
                                  else f"{prefix}ForCausalLM"]
    (base / "config.json").write_text(json.dumps(hf_config))
    result = _dry(run, base, "--platform", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    count = _transformers_parameters(json.loads((base / "config.json").read_text()))
    assert report["model"]["parameters"] == count and report["per_device_bytes"]["params"] == 4 * count


MOE = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 64, "intermediate_size": 128,
       "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 100,
       "num_local_experts": 8, "num_experts_per_tok": 2}
DENSE = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 100}


@pytest.mark.parametrize(("config", "fragment"), [
    (MOE, "mixture-of-experts models are not supported (model_type 'mixtral')"),
    ({**MOE, "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "num_experts": 8}, "'qwen3_moe'"),
    ({**MOE, "architectures": ["OlmoeForCausalLM"], "model_type": "olmoe", "num_experts": 8}, "'olmoe'"),
    ({**DENSE, "num_experts": 8}, "dense qwen3 model declares experts (num_experts=8)"),
    ({**DENSE, "num_key_value_heads": 3}, "num_attention_heads 4 is not a multiple of num_key_value_heads 3"),
    ({**DENSE, "num_hidden_layers": 0}, "sizes must be positive (num_hidden_layers=0)"),
    ({**DENSE, "intermediate_size": -128}, "intermediate_size=-128"),
])
def test_moe_and_contradictory_configs_are_refused_not_fitted(run, tmp_path, config, fragment):
    from tests.conftest import assert_one_line_error

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(config))
    assert_one_line_error(_dry(run, base, "--platform", "gpu"), fragment)
    assert sorted(p.name for p in base.iterdir()) == ["config.json"]
