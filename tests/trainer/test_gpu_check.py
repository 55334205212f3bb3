"""benchmarks/gpu_check.sh keeps working where no GPU is: its CPU smoke run (--model tiny) records every
measurement the GPU run records, with no failed step (the GPU run itself is manual, see RESULTS.md)."""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]


def test_cpu_smoke_run_records_every_measurement(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "JAX_PLATFORMS": "cpu", "BASEPICK_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--model", "tiny"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    benches = [r["bench"] for r in lines]
    has_torch = importlib.util.find_spec("torch") is not None
    failed = [r for r in lines if "error" in r and not (r["bench"].startswith("throughput_torch") and not has_torch)]
    assert failed == []
    assert benches[:4] == ["versions", "matmul_bf16", "attention", "attention_equality"]
    steps = [r for r in lines if r["bench"] == "train_step"]
    assert [(r["framework"], r["remat"]) for r in steps if r["framework"] == "jax"] == [("jax", "full"), ("jax", "none")]
    assert all(r["tokens_per_s"] > 0 and r["mfu"] > 0 for r in steps)
    assert steps[0]["dry_run_bytes"]["total"] > steps[0]["dry_run_bytes"]["params"] > 0
    assert len(steps) == (3 if has_torch else 2)
