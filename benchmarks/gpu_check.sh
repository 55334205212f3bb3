#!/usr/bin/env bash
# The trainer's GPU check, about 6 minutes on one H100/H200, from the repository root, with the machine's
# own python3 (jax, flax, optax, orbax, torch, transformers preinstalled) and no downloads:
#
#   bash benchmarks/gpu_check.sh                # real shapes: Qwen2.5-0.5B and Llama-3.2-1B at 2048 tokens
#   bash benchmarks/gpu_check.sh --model tiny   # the CPU smoke run (CI runs it): tiny shapes, 128 tokens
#
# Writes JSON lines to $OUT/gpu_check.jsonl (OUT defaults to ./gpu_check_out) and the processes' stderr to
# $OUT/gpu_check.log. Each measurement is its own process (JAX keeps 75% of the GPU's memory once it
# starts, so PyTorch is never measured beside it) with its own time limit; a failed one leaves a
# {"bench": ..., "error": ...} line and the others still run. What it records:
#   1. the device and library versions;
#   2. a bf16 matrix product's rate (the device's real peak, used for MFU), and fused (cuDNN) against
#      XLA attention: equality of outputs and gradients, time and memory;
#   3. the dry run's estimate against the measured peak memory of the same run (Qwen2.5-0.5B, 8 pairs
#      x 2048 tokens, remat full: the trainer's defaults);
#   4. training throughput, JAX (trainer_jax) and transformers + PyTorch, one process each, for
#      Qwen2.5-0.5B- and Llama-3.2-1B-shaped RMs at 2048 tokens in bf16: tokens/s and MFU.
set -uo pipefail
cd "$(dirname "$0")/.."

MODELS=(qwen2.5-0.5b-instruct llama-3.2-1b-instruct)
SEQ=2048 STEPS=10 REPEAT=3 WARMUP=3 MATMUL=8192 PAIRS=4 DEFAULT_PAIRS=8 LIMIT=240
if [[ "${1:-}" == "--model" && "${2:-}" == "tiny" ]]; then
  MODELS=(tiny) SEQ=128 STEPS=2 REPEAT=1 WARMUP=1 MATMUL=256 PAIRS=2 DEFAULT_PAIRS=2 LIMIT=120
elif [[ $# -gt 0 ]]; then
  echo "usage: bash benchmarks/gpu_check.sh [--model tiny]" >&2
  exit 2
fi
PYTHON=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
JSONL="$OUT/gpu_check.jsonl" LOG="$OUT/gpu_check.log"
: >"$JSONL"
: >"$LOG"
export PYTHONUNBUFFERED=1

step() {  # step NAME COMMAND...: run with a time limit, keep its JSON lines, note a failure as a JSON line
  local name=$1
  shift
  echo "== $name: $*" >>"$LOG"
  local out
  out=$(timeout "$LIMIT" "$@" 2>>"$LOG")
  local code=$?
  grep '^{' <<<"$out" >>"$JSONL"
  if [[ $code -ne 0 ]]; then
    printf '{"bench": "%s", "error": "exit %s (see gpu_check.log)"}\n' "$name" "$code" >>"$JSONL"
  fi
}

step versions "$PYTHON" -c '
import json, platform, importlib.metadata as md
v = {p: (md.version(p) if p in {d.metadata["Name"].lower() for d in md.distributions()} else None)
     for p in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "torch", "transformers", "safetensors")}
import jax
d = jax.devices()[0]
print(json.dumps({"bench": "versions", "python": platform.python_version(), "backend": jax.default_backend(),
                  "device": d.device_kind, "devices": jax.device_count(), "versions": v}))'
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader >>"$LOG" 2>&1
fi

step attention "$PYTHON" benchmarks/attention_check.py --model "${MODELS[0]}" --rows $((2 * DEFAULT_PAIRS)) \
  --seq "$SEQ" --steps "$STEPS" --repeat "$REPEAT" --matmul "$MATMUL"
PEAK=$(grep '"matmul_bf16"' "$JSONL" | "$PYTHON" -c 'import json,sys; print(round(json.loads(sys.stdin.readline())["tflops"], 4))' 2>/dev/null)
PEAK_ARGS=()
[[ -n "$PEAK" ]] && PEAK_ARGS=(--peak-tflops "$PEAK")

common=(--seq "$SEQ" --steps "$STEPS" --repeat "$REPEAT" --warmup "$WARMUP" "${PEAK_ARGS[@]}")
step dry_run_vs_peak "$PYTHON" benchmarks/bench_train_gpu.py --framework jax --model "${MODELS[0]}" \
  --pairs "$DEFAULT_PAIRS" --remat full "${common[@]}"
for model in "${MODELS[@]}"; do
  for framework in jax torch; do
    step "throughput_${framework}_${model}" "$PYTHON" benchmarks/bench_train_gpu.py --framework "$framework" \
      --model "$model" --pairs "$PAIRS" --remat none "${common[@]}"
  done
done
echo "wrote $JSONL ($(wc -l <"$JSONL") lines) and $LOG" >&2
