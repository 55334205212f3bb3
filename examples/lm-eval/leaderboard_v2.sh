#!/usr/bin/env bash
# Run lm-evaluation-harness on one model with the Open LLM Leaderboard v2 settings, then turn the
# results into basepick features (examples/lm-eval/README.md says where each setting comes from).
#
# usage: bash examples/lm-eval/leaderboard_v2.sh --chat-template yes|no [--features FEATURES.csv]
#            [--backend hf|vllm] [--dtype bfloat16|float16] [--revision REV] [--results DIR] [--dry-run] MODEL_ID
#
#   --chat-template  yes for instruction/chat models, no for base models: the leaderboard applied the
#                    template (with few-shot examples as chat turns) to instruction models only
#   --features       feature table to add the model's row to (default features.csv; your candidates
#                    file works: `basepick rank` it again afterwards)
#   --backend        hf (what the leaderboard ran; default) or vllm (faster, last digits differ)
#   --dtype          the precision to load the weights in (default bfloat16, as most leaderboard rows)
#   --revision       the model revision (default main)
#   --results        where lm-eval writes its results (default lm-eval-results/)
#   --dry-run        print the two commands instead of running them
# environment: LM_EVAL (default lm_eval), BASEPICK (default basepick), EXTRA_MODEL_ARGS (appended to
# --model_args, e.g. tensor_parallel_size=2 or max_model_len=8192 for vllm)
set -euo pipefail

chat="" features="features.csv" backend="hf" dtype="bfloat16" revision="main" results="lm-eval-results" dry=0 model=""
fail() { echo "Error: $*" >&2; exit 2; }
value() { [ $# -ge 2 ] && [ -n "$2" ] || fail "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --chat-template) value "$@"; chat="$2"; shift 2 ;;
    --features) value "$@"; features="$2"; shift 2 ;;
    --backend) value "$@"; backend="$2"; shift 2 ;;
    --dtype) value "$@"; dtype="$2"; shift 2 ;;
    --revision) value "$@"; revision="$2"; shift 2 ;;
    --results) value "$@"; results="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *) [ -z "$model" ] || fail "one MODEL_ID only (got $model and $1)"; model="$1"; shift ;;
  esac
done
[ -n "$model" ] || fail "give the model's Hugging Face id, e.g. Qwen/Qwen3-8B (see --help)"
case "$model" in */*) ;; *) fail "$model is not a Hugging Face id ORG/NAME" ;; esac
case "$chat" in
  yes) template=(--apply_chat_template --fewshot_as_multiturn) ;;
  no) template=() ;;
  *) fail "--chat-template yes (instruction/chat model) or no (base model) is required: the leaderboard's setting depends on it" ;;
esac
case "$backend" in hf|vllm) ;; *) fail "--backend is hf or vllm, not $backend" ;; esac
case "$dtype" in bfloat16|float16|float32) ;; *) fail "--dtype is bfloat16, float16 or float32, not $dtype" ;; esac

model_args="pretrained=$model,revision=$revision,dtype=$dtype${EXTRA_MODEL_ARGS:+,$EXTRA_MODEL_ARGS}"
run_dir="$results/${model//\//__}"  # lm_eval's folder for this model (utils.sanitize_model_name)
lm_eval=("${LM_EVAL:-lm_eval}" --model "$backend" --model_args "$model_args" --tasks leaderboard
         --batch_size auto --output_path "$results" "${template[@]}")
ingest=("${BASEPICK:-basepick}" ingest "$run_dir" --out "$features" --model-id "$model")

show() {  # a command as one copyable line (single quotes where the shell needs them)
  local out=() arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./=:,@+-]+$ ]]; then out+=("$arg"); else out+=("'${arg//\'/\'\\\'\'}'"); fi
  done
  echo "${out[*]}"
}
if [ "$dry" = 1 ]; then
  show "${lm_eval[@]}"
  show "${ingest[@]}"
  exit 0
fi
"${lm_eval[@]}"
"${ingest[@]}"
