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


def test_cpu_devices_need_a_memory_size(run, tmp_path):
    result = run("train", str(_base(tmp_path, "qwen2.5-0.5b-instruct")), "--recipe", "bradley_terry", "--dry-run")
    assert result.exit_code == 2 and "give --device-memory GB" in result.stderr
