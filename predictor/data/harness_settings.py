"""The Open LLM Leaderboard's lm-eval settings, a run's settings compared with them, and the command
that reproduces them for one model.

Where the leaderboard's settings come from:

* Its About page, "Reproducibility" (huggingface.co/docs/leaderboards/open_llm_leaderboard/about;
  source: github.com/huggingface/leaderboards, docs/source/en/open_llm_leaderboard/about.md, last
  changed 2025-03-13): the leaderboard's fork of lm-eval (github.com/huggingface/lm-evaluation-harness,
  branch ``main``; ``adding_all_changess`` until 2024-11), ``--model_args pretrained=<model>,
  revision=<rev>,dtype=<precision> --tasks leaderboard --batch_size auto`` on the hf backend, and "for
  instruction models add the ``--apply_chat_template`` and ``fewshot_as_multiturn`` option". Shots:
  IFEval 0, BBH 3 (every subtask), MATH Lvl 5 4, GPQA 0, MuSR 0, MMLU-Pro 5.
* Task versions: the fork's task YAMLs (BBH 0.0, GPQA 1.0, IFEval 2.0, MATH 1.0 until 2024-10-31 then
  2.0, MMLU-Pro 0.1, MuSR 1.0) and EleutherAI's lm-eval, whose leaderboard tasks are the same up to the
  differences listed in ``VERSIONS`` (read from both repositories' histories; identical from 0.4.9 to
  0.4.12 but for a typing-only edit).
* Leaderboard v1 (the v1 features): the 2023 harness, no chat template; shots as in ``V1_SHOTS``.

Whether a model gets the chat template: the leaderboard applied it when the submitter asked, which
its About page asks of instruction models: 670 of its 718 chat-model rows and 34 of its 275
pretrained rows were evaluated with it. ``chat_model`` reads the stage from the model id; a file's
``post_training`` column decides first (``template_for``).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the results reader loads only where results are compared (ingest), not on rank's path
    from predictor.data.harness import ModelResults, Run

V2_SHOTS = {"ifeval": 0, "bbh": 3, "math_lvl5": 4, "gpqa": 0, "musr": 0, "mmlu_pro": 5}
V1_SHOTS = {"arc": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa": 0, "winogrande": 5, "gsm8k": 5}
FEW_SHOT = tuple(name for name, shots in V2_SHOTS.items() if shots)  # where --fewshot_as_multiturn matters
# Task versions a leaderboard v2 run may carry, and how each relates to the leaderboard's fork.
VERSIONS = {
    "ifeval": {"2.0": "the leaderboard's fork",
               "3.0": "lm-eval >= 0.4.4: NLTK's punkt_tab sentence data instead of punkt (a security fix), same checks"},
    "bbh": {"0.0": "the leaderboard's fork",
            "1.0": "lm-eval >= 0.4.4: the fork's prompts less the whitespace ending each subtask's description"},
    "math_lvl5": {"1.0": "the leaderboard's fork until 2024-10-31 (its old answer parser)",
                  "2.0": "the fork from 2024-10-31 (Math-Verify scoring from 2025-02-14), lm-eval 0.4.6-0.4.8",
                  "3.0": "lm-eval >= 0.4.9: Math-Verify scoring, as the leaderboard's final export"},
    "gpqa": {"1.0": "the leaderboard's fork and lm-eval >= 0.4.4"},
    "musr": {"1.0": "the leaderboard's fork and lm-eval >= 0.4.4"},
    "mmlu_pro": {"0.1": "the leaderboard's fork and lm-eval >= 0.4.4"},
}
# Measured in the shipped snapshot: the 23 models it holds evaluated both with and without the chat
# template (tests/test_harness.py recomputes these).
TEMPLATE_EFFECT = ("with the template IFEval moves by a median +16.8 points (-14.3 to +48.4), MuSR -2.4, GPQA -1.3 "
                   "over the 23 models the leaderboard evaluated both ways")
SCRIPT = "examples/lm-eval/leaderboard_v2.sh"
PROVENANCE_COLUMNS = ("lm_eval_version", "lm_eval_backend", "lm_eval_dtype", "lm_eval_chat_template",
                      "lm_eval_fewshot_as_multiturn", "lm_eval_n_shot", "lm_eval_task_versions", "lm_eval_settings")
MATCHES = "leaderboard"  # lm_eval_settings of a row whose settings match the leaderboard's

_BASE = re.compile(r"(^|[-_.])(base|pt|pretrained)([-_.]|$)", re.I)
_CHAT = re.compile(r"instruct|chat|(^|[-_.])(it|sft|dpo|rlhf|rlvr|orpo|simpo|kto)([-_.]|$)", re.I)


def chat_model(model_id: str) -> bool | None:
    """True for an instruction/chat model by its id (``-Instruct``, ``-chat``, ``-it``, ``-SFT``, ``-DPO``...),
    False for a base model (``-Base``, ``-pt``), None when the id says neither (``Qwen/Qwen3-8B`` is a
    chat model, ``meta-llama/Llama-3.1-8B`` a base one: a file's ``post_training`` column decides those)."""
    name = model_id.rsplit("/", 1)[-1]
    base, chat = bool(_BASE.search(name)), bool(_CHAT.search(name))
    return None if base == chat else chat


def template_for(model_id: str, post_training: float) -> tuple[bool, str]:
    """Whether the leaderboard's setting applies the chat template to this model, and why."""
    if not math.isnan(post_training):
        return post_training > 0, "its post_training"
    if (rule := chat_model(model_id)) is not None:
        return rule, "its id"
    return True, "assumed, as its id names no training stage: a post_training column (base or instruct) decides"


def command(model_id: str, chat: bool, features: str) -> str:
    """The one command that runs the leaderboard's settings on ``model_id`` and ingests the results into ``features``."""
    return " ".join(["bash", SCRIPT, "--chat-template", "yes" if chat else "no", "--features", shlex.quote(features),
                     shlex.quote(model_id)])


@dataclass(frozen=True)
class Difference:
    """One setting of a run that differs from the leaderboard's."""

    setting: str  # chat_template, fewshot_as_multiturn, n_shot, task_version
    found: str  # what the run did, per benchmark where it matters
    effect: str  # the likely effect on the scores

    def text(self) -> str:
        return f"{self.setting}: {self.found}; {self.effect}"


def compare(res: ModelResults, benchmarks: list[str]) -> list[Difference]:
    """How the runs behind ``benchmarks`` (canonical names) differ from the leaderboard's settings."""
    out = []
    v2 = [b for b in benchmarks if b in V2_SHOTS]
    v1 = [b for b in benchmarks if b in V1_SHOTS]
    chat = chat_model(res.model_id)
    runs_v2 = _runs(res, v2)
    if chat and any(not r.chat_template for r in runs_v2):
        out.append(Difference("chat_template", f"not applied to {res.model_id}, an instruction model by its id",
                              "the leaderboard's rows of instruction models apply it (--apply_chat_template "
                              f"--fewshot_as_multiturn), and so does the row basepick's snapshot prefers; {TEMPLATE_EFFECT}"))
    if chat is False and any(r.chat_template for r in runs_v2):
        out.append(Difference("chat_template", f"applied to {res.model_id}, a base model by its id",
                              f"the leaderboard evaluated base models without it; {TEMPLATE_EFFECT}"))
    if (plain := [b for b in v2 if b in FEW_SHOT and any(r.chat_template and not r.fewshot_as_multiturn
                                                        for r in res.runs_of(b))]):
        out.append(Difference("fewshot_as_multiturn", f"off with the chat template for {', '.join(plain)}",
                              "the leaderboard gave few-shot examples as chat turns whenever it applied the template; "
                              "these prompts differ from its own (effect not measured)"))
    if (templated := [b for b in v1 if any(r.chat_template for r in res.runs_of(b))]):
        out.append(Difference("chat_template", f"applied to the leaderboard v1 tasks {', '.join(templated)}",
                              "leaderboard v1 evaluated without chat templates"))
    shots = [f"{b} {found} (leaderboard {expected})" for b in benchmarks
             if (expected := {**V2_SHOTS, **V1_SHOTS}.get(b)) is not None
             and (found := _shots(res, b)) not in (None, str(expected))]
    if shots:
        out.append(Difference("n_shot", ", ".join(shots), "a different number of few-shot examples moves accuracy: "
                              "not on the snapshot's scale; run the tasks with their defaults (no --num_fewshot)"))
    unknown = [f"{b} {v}" for b in v2 if (v := _versions(res, b)) and any(x not in VERSIONS[b] for x in v.split("/"))]
    if unknown:
        out.append(Difference("task_version", ", ".join(unknown),
                              "versions basepick has not compared with the leaderboard's: prompts or scoring may "
                              "differ; lm-eval 0.4.9 to 0.4.12 match it (examples/lm-eval/README.md)"))
    return out


def math_caveat(res: ModelResults) -> str | None:
    """A note when MATH Lvl 5 was scored by the harness's older exact_match, not Math-Verify."""
    from predictor.data.harness import benchmark_of

    tasks = [t for t in res.tasks if benchmark_of(t) == "math_lvl5"]
    if not tasks or any("exact_match_original,none" in res.tasks[t] for t in tasks):  # 3.0: Math-Verify
        return None
    version = _versions(res, "math_lvl5") or "unknown"
    return (f"math_lvl5 is leaderboard_math_hard v{version}'s exact_match; the leaderboard's final export (and "
            "lm-eval >= 0.4.9) score MATH with Math-Verify, on average ~4.7 points higher: unless this ran the "
            "leaderboard's fork after 2025-02-14, expect math_lvl5 to read low")


def provenance(res: ModelResults, benchmarks: list[str], differences: list[Difference]) -> dict[str, str]:
    """The ``lm_eval_*`` columns of a feature row: how the runs behind ``benchmarks`` were made."""
    runs = _runs(res, benchmarks)

    def joined(values) -> str:
        return " + ".join(dict.fromkeys(v or "unknown" for v in values))

    return {
        "lm_eval_version": joined(r.lm_eval for r in runs),
        "lm_eval_backend": joined(r.backend for r in runs),
        "lm_eval_dtype": joined(r.dtype for r in runs),
        "lm_eval_chat_template": joined("yes" if r.chat_template else "no" for r in runs),
        "lm_eval_fewshot_as_multiturn": joined("yes" if r.fewshot_as_multiturn and r.chat_template else "no" for r in runs),
        "lm_eval_n_shot": " ".join(f"{b}={_shots(res, b) or '?'}" for b in benchmarks),
        "lm_eval_task_versions": " ".join(f"{b}={_versions(res, b) or '?'}" for b in benchmarks if b in V2_SHOTS),
        "lm_eval_settings": MATCHES if not differences
        else "differs: " + ", ".join(dict.fromkeys(d.setting for d in differences)),
    }


def describe(settings: dict[str, str]) -> str:
    """A provenance record (the ``lm_eval_*`` cells of a row) in a few words, for tables."""
    version = settings.get("lm_eval_version", "")
    check = settings.get("lm_eval_settings", "")
    return ", ".join(p for p in (f"lm-eval {version}" if version else "lm-eval", check and
                                 ("leaderboard settings" if check == MATCHES else check)) if p)


def _runs(res: ModelResults, benchmarks: list[str]) -> list[Run]:
    return list({id(r): r for b in benchmarks for r in res.runs_of(b)}.values())


def _leaves(res: ModelResults, benchmark: str) -> list[str]:
    """The tasks that score a benchmark (subtasks, not group rows: group rows carry no version or shots)."""
    from predictor.data.harness import benchmark_of

    tasks = [t for t in res.tasks if benchmark_of(t) == benchmark]
    groups = {"leaderboard_bbh", "leaderboard_gpqa", "leaderboard_math_hard", "leaderboard_musr", "mmlu",
              "mmlu_humanities", "mmlu_stem", "mmlu_social_sciences", "mmlu_other"}
    leaves = [t for t in tasks if t not in groups]
    return leaves or tasks


def _shots(res: ModelResults, benchmark: str) -> str | None:
    values = {str(res.task_run[t].n_shot[t]) for t in _leaves(res, benchmark) if t in res.task_run[t].n_shot}
    return "/".join(sorted(values)) if values else None


def _versions(res: ModelResults, benchmark: str) -> str:
    values = {res.task_run[t].versions.get(t, "") for t in _leaves(res, benchmark)} - {""}
    return "/".join(sorted(values))
