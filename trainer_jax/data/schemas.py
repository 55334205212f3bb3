"""Row schemas: every supported row format normalised to chat messages (``[{"role": ..., "content": ...}]``).

* ``prompt`` + ``chosen``/``rejected`` as strings (the prompt becomes one user turn) or as message lists
  (``prompt`` a string or messages; ``chosen``/``rejected`` either the answer turns or the full conversation);
* ``chosen``/``rejected`` as full message lists, no prompt;
* Anthropic HH transcripts: ``chosen``/``rejected`` strings of ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``;
  consecutive turns of one speaker (13 of 4,624 HH harmless-base test transcripts) are merged;
* HelpSteer2 rows (``prompt``, ``response`` and the five attributes) for the regression recipe; multi-turn
  prompts use HelpSteer2's ``<extra_id_1>User`` / ``<extra_id_1>Assistant`` turn markers.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from predictor.errors import DataError
from trainer_jax.data.readers import read_jsonl

ATTRIBUTES: tuple[str, ...] = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
ROLES = ("system", "user", "assistant")
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HS2_TURN = re.compile(r"<extra_id_1>(User|Assistant)\n")

Message = dict[str, str]


@dataclass(frozen=True)
class PreferenceExample:
    """One preference pair as two full conversations that end with the chosen / rejected answer."""

    chosen: tuple[Message, ...]  # prompt turns + chosen assistant turn
    rejected: tuple[Message, ...]  # prompt turns + rejected assistant turn


@dataclass(frozen=True)
class RegressionExample:
    """One HelpSteer2-style example: a conversation and its five attribute targets."""

    messages: tuple[Message, ...]  # prompt turns + the rated assistant response
    targets: tuple[float, ...]  # helpfulness, correctness, coherence, complexity, verbosity (0-4)


def read_preferences(path: str | os.PathLike) -> list[PreferenceExample]:
    """Read preference pairs from JSONL(.gz) in any supported format; errors name the line."""
    out = [parse_preference_row(row, f"{path}:{n}") for n, row in read_jsonl(path)]
    if not out:
        raise DataError(f"{path}: no preference rows")
    return out


def read_regression(path: str | os.PathLike) -> list[RegressionExample]:
    """Read HelpSteer2-style rows from JSONL(.gz); errors name the line."""
    out = [parse_regression_row(row, f"{path}:{n}") for n, row in read_jsonl(path)]
    if not out:
        raise DataError(f"{path}: no regression rows")
    return out


def parse_preference_row(row: Mapping[str, Any], where: str) -> PreferenceExample:
    """Normalise one preference row (string, chat-message or HH format) to two conversations."""
    for name in ("chosen", "rejected"):
        if row.get(name) is None:
            raise DataError(f"{where}: missing field '{name}'")
    prompt = row.get("prompt")
    if prompt is None:
        if isinstance(row["chosen"], str) and isinstance(row["rejected"], str):
            if not all(_is_hh(row[k]) for k in ("chosen", "rejected")):
                raise DataError(f"{where}: 'chosen'/'rejected' are plain text without a 'prompt' field; add a "
                                "prompt, use chat messages or HH transcripts ('\\n\\nHuman: ...')")
            sides = [parse_hh_transcript(row[k], f"{where}: field '{k}'") for k in ("chosen", "rejected")]
        else:
            sides = [_messages(row[k], where, k) for k in ("chosen", "rejected")]
    else:
        head = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _messages(prompt, where, "prompt")
        sides = [_with_prompt(head, row[k], where, k) for k in ("chosen", "rejected")]
    chosen, rejected = (_check_conversation(s, where) for s in sides)
    return PreferenceExample(chosen, rejected)


def parse_regression_row(row: Mapping[str, Any], where: str) -> RegressionExample:
    """Normalise one HelpSteer2 row (prompt, response, five attributes) to messages + targets."""
    for name in ("prompt", "response"):
        if not isinstance(row.get(name), str):
            raise DataError(f"{where}: field '{name}' must be a string")
    targets = []
    for name in ATTRIBUTES:
        value = row.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise DataError(f"{where}: field '{name}' must be a finite number, got {value!r:.40}")
        targets.append(float(value))
    turns = _helpsteer_prompt(row["prompt"], where) + [{"role": "assistant", "content": row["response"]}]
    return RegressionExample(_check_conversation(turns, where), tuple(targets))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False


def parse_hh_transcript(text: str, where: str) -> list[Message]:
    """Split an Anthropic HH transcript into user/assistant messages (same-speaker runs merged)."""
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise DataError(f"{where}: not an HH transcript (expected '\\n\\nHuman: ...\\n\\nAssistant: ...')")
    turns = [{"role": "user" if speaker == "Human" else "assistant", "content": body.strip()}
             for speaker, body in zip(parts[1::2], parts[2::2])]
    return _merge_runs(turns)


def _is_hh(text: str) -> bool:
    return text.startswith(("\n\nHuman:", "Human:"))


def _helpsteer_prompt(prompt: str, where: str) -> list[Message]:
    parts = _HS2_TURN.split(prompt)
    turns = [{"role": "user", "content": parts[0].strip()}]
    turns += [{"role": speaker.lower(), "content": body.strip()} for speaker, body in zip(parts[1::2], parts[2::2])]
    if "<extra_id_1>" in "".join(t["content"] for t in turns):
        raise DataError(f"{where}: field 'prompt' has an <extra_id_1> marker without 'User' or 'Assistant'")
    return _merge_runs(turns)


def _merge_runs(turns: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n\n" + turn["content"]}
        else:
            merged.append(turn)
    return merged


def _messages(value: Any, where: str, name: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{name}' must be a string or a non-empty list of chat messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
            raise DataError(f"{where}: field '{name}'[{i}] must be {{'role': system|user|assistant, 'content': str}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _with_prompt(head: list[Message], answer: Any, where: str, name: str) -> list[Message]:
    if isinstance(answer, str):
        return [*head, {"role": "assistant", "content": answer}]
    turns = _messages(answer, where, name)
    return turns if turns[: len(head)] == head else [*head, *turns]


def _check_conversation(turns: list[Message], where: str) -> tuple[Message, ...]:
    if not turns or turns[-1]["role"] != "assistant":
        raise DataError(f"{where}: a conversation must end with an assistant turn")
    return tuple(turns)

