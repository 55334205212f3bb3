"""Canonical feature names, their units and valid ranges, and the NaN policy.

Every table that reaches the predictor speaks these names. Benchmark scores are in points, 0-100:
Open LLM Leaderboard v2 scores are the leaderboard's chance-normalised scores, v1 scores its plain
accuracies. A value that is not known is NaN — never 0 — and LightGBM routes NaN on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    low: float  # smallest valid value, inclusive
    high: float  # largest valid value, inclusive
    is_score: bool = False  # a benchmark score: points 0-100, fractions 0-1 are rescaled


def _score(name: str, description: str) -> FeatureSpec:
    return FeatureSpec(name, description, 0.0, 100.0, is_score=True)


V2_SCORES = ("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro")
V1_SCORES = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")

# post_training stage as an ordinal: the seed study finds SFT far above the raw base and preference
# tuning after SFT slightly below it; instruct/chat releases are SFT + preference tuning.
POST_TRAINING_STAGES = {"base": 0.0, "sft": 1.0, "instruct": 2.0, "dpo": 2.0, "rlvr": 3.0}

SPECS: dict[str, FeatureSpec] = {
    s.name: s
    for s in (
        _score("ifeval", "IFEval, leaderboard v2 normalised score"),
        _score("bbh", "BBH, leaderboard v2 normalised score"),
        _score("math_lvl5", "MATH Level 5, leaderboard v2 normalised score"),
        _score("gpqa", "GPQA, leaderboard v2 normalised score"),
        _score("musr", "MuSR, leaderboard v2 normalised score"),
        _score("mmlu_pro", "MMLU-PRO, leaderboard v2 normalised score"),
        _score("arc", "ARC-Challenge 25-shot, leaderboard v1"),
        _score("hellaswag", "HellaSwag 10-shot, leaderboard v1"),
        _score("mmlu", "MMLU 5-shot, leaderboard v1"),
        _score("truthfulqa", "TruthfulQA MC2, leaderboard v1"),
        _score("winogrande", "Winogrande 5-shot, leaderboard v1"),
        _score("gsm8k", "GSM8K 5-shot, leaderboard v1"),
        FeatureSpec("params_b", "parameters, billions", 0.001, 10_000.0),
        FeatureSpec("pretrain_tokens_t", "pre-training tokens, trillions", 0.0, 1_000.0),
        FeatureSpec(
            "post_training",
            "post-training stage: 0 base, 1 sft, 2 instruct/dpo, 3 rlvr (names accepted too)",
            0.0,
            3.0,
        ),
    )
}

# Derived columns, computed from the ones above; never read from a user's file.
DERIVED = ("mean_v2", "log_params")
ALL_FEATURES = tuple(SPECS) + DERIVED


# Columns that `basepick probe` writes beside presence_*: descriptive, not features.
PROBE_EXTRAS = ("spread_", "docs_", "probe_tokens")


def is_probe_extra(name: str) -> bool:
    return name.startswith(PROBE_EXTRAS)


def is_presence(name: str) -> bool:
    """``presence_<domain>`` columns come from ``basepick probe``: mean log-probability, <= 0."""
    return name.startswith("presence_") and len(name) > len("presence_")


def parse_value(name: str, text: str) -> float:
    """One cell → float (NaN when empty). Raises ValueError with a short reason."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "na", "n/a", "null", "none", "-"):
        return math.nan
    if name == "post_training" and text.lower() in POST_TRAINING_STAGES:
        return POST_TRAINING_STAGES[text.lower()]
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return value


def detect_fraction(values: np.ndarray) -> bool:
    """A score column is read as fractions (0-1) when every known value lies in [0, 1]."""
    known = values[~np.isnan(values)]
    return known.size > 0 and bool(np.all((known >= 0.0) & (known <= 1.0)))


def check_range(name: str, value: float) -> str | None:
    """Return why ``value`` is out of range for feature ``name``, or None when it is valid."""
    if math.isnan(value):
        return None
    if is_presence(name):
        return None if value <= 0.0 else f"{value:g} is a log-probability and must be <= 0"
    spec = SPECS[name]
    if not spec.low <= value <= spec.high:
        return f"{value:g} is outside [{spec.low:g}, {spec.high:g}] ({spec.description})"
    return None


def add_derived(table: dict[str, np.ndarray]) -> None:
    """Add ``mean_v2`` (mean of the six v2 scores, NaN unless all six are known) and ``log_params``."""
    v2 = np.stack([table[name] for name in V2_SCORES], axis=1)  # (N, 6) points
    table["mean_v2"] = v2.mean(axis=1)  # NaN propagates: a partial mean is not comparable
    with np.errstate(invalid="ignore", divide="ignore"):
        table["log_params"] = np.log(table["params_b"])  # log(billions)


def size_bucket(params_b: float) -> str:
    """The seed study's size buckets."""
    if math.isnan(params_b):
        return "?"
    if params_b < 3.0:
        return "<3B"
    if params_b < 6.0:
        return "3-6B"
    return ">=6B"


# --------------------------------------------------------------------------------------------------
# Sizes stated in model names: quantised exports record their packed parameter count (a 4-bit
# Llama-3-8B shows 4.015B), which puts an 8B model in the wrong size bucket.

# "-8B", "_12b", "-8x7B" (a size token between separators); "1_8b", "Qwen0.5B" and "3.2.1B" are ambiguous
_SIZE_TOKEN = re.compile(r"(?:^|(?<=[-_ ]))(?<!\d_)(?:(\d+)x)?(\d+(?:\.\d+)?)[bB](?=$|[-_ .])")
NAME_SIZE_MIN = 6.0  # billions: names stating at least this are checked against the recorded size
NAME_SIZE_RATIO = 0.6  # a recorded size below this share of the stated one contradicts the name


def stated_size(model_id: str) -> float:
    """Billions of parameters the model's name states ("ZEUS-8B" → 8, "8x7B" → 56); NaN when the name
    states none, or several different sizes ("OLMoE-1B-7B")."""
    name = model_id.rsplit("/", 1)[-1]
    sizes = {float(m[2]) * (int(m[1]) if m[1] else 1) for m in _SIZE_TOKEN.finditer(name)}
    return sizes.pop() if len(sizes) == 1 else math.nan


def contradicts_name(model_id: str, params_b: float) -> bool:
    """True when the name states >= 6B and the recorded size is under 60% of it (a quantised export)."""
    stated = stated_size(model_id)
    return stated >= NAME_SIZE_MIN and params_b < NAME_SIZE_RATIO * stated


def nominal_size(model_id: str, params_b: float) -> float:
    """The size a model is known by, for ``--max-params``: the name's stated size when the recorded
    size agrees with it (0.6-1.5x, so Llama-3.1-8B at 8.03B is an 8B model) or is unknown; else the
    recorded size (a merge or MoE whose name understates it)."""
    stated = stated_size(model_id)
    if math.isnan(stated) or (not math.isnan(params_b) and not NAME_SIZE_RATIO * stated <= params_b <= 1.5 * stated):
        return params_b
    return stated
