"""Row schemas of the data sets reward models are trained and scored on, recognised by their columns.

Every row becomes conversations: a tuple of chat messages (``{"role", "content"}``) rendered with the
tokenizer's chat template, or a plain string encoded as TRL does (the tokenizer's default call, EOS at the end).

| schema | columns | becomes |
|---|---|---|
| ``helpsteer2`` | prompt, response, helpfulness, correctness, coherence, complexity, verbosity | regression row |
| ``helpsteer2-preference`` | split, prompt, response_1, response_2, preference_strength | pair |
| ``rewardbench2`` | id, prompt, chosen [list], rejected [list], num_correct, num_incorrect, subset, ... | best-of-n item |
| ``rewardbench`` | prompt, chosen, rejected, subset (+ id, chosen_model, rejected_model) | pair (+ subset, id) |
| ``hh-rlhf`` | chosen, rejected: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcripts | pair |
| ``trl`` | chosen, rejected (+ prompt, margin, id): strings or message lists | pair |

* HelpSteer2 prompts may hold several turns, split at ``<extra_id_1>User`` / ``<extra_id_1>Assistant``.
* HelpSteer2-Preference: ``preference_strength`` runs -3..3, negative when response_1 is the better one
  (the data set's card); 0 (no preference) rows are dropped and counted; ``|strength|`` is the margin when
  asked for; ``split`` ("train"/"val") filters rows that have the column.
* TRL, as TRL's ``RewardTrainer`` encodes it: plain strings are text, ``prompt + chosen`` (concatenated
  as they are; without ``prompt``, the whole text), which ``encode`` ends with EOS; message lists are a
  conversation for the chat template (a prompt list is prepended unless the answer already starts with
  it). ``margin`` enters the Bradley-Terry loss as in TRL: ``-log sigmoid(r_c - r_r - margin)``.
* RewardBench (rows that name their ``subset``): ``prompt`` is a user turn and the answer an assistant turn,
  for the chat template, as reward-bench renders them.
* Pairs whose chosen and rejected sides are identical are dropped and counted.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from predictor.errors import DataError
from trainer_jax.data.readers import read_rows

ATTRIBUTES: tuple[str, ...] = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
ROLES = ("system", "user", "assistant")
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HS2_TURN = re.compile(r"<extra_id_1>(User|Assistant)\n")

Message = dict[str, str]
Conversation = tuple[Message, ...] | str  # chat messages, or plain text encoded as the tokenizer does


@dataclass(frozen=True)
class PreferenceExample:
    """One preference pair: two whole conversations, ending with the chosen / rejected answer."""

    chosen: Conversation
    rejected: Conversation
    margin: float = 0.0  # Bradley-Terry margin (TRL's meaning); 0 = none
    subset: str | None = None  # RewardBench subset, when the row names one
    id: str | None = None  # row id, when the row has one
    prompt: str | None = field(default=None, compare=False)  # TRL text rows: the prompt inside chosen/rejected


@dataclass(frozen=True)
class RegressionExample:
    """One HelpSteer2 rating row: a conversation and its five attribute targets."""

    messages: tuple[Message, ...]  # prompt turns + the rated assistant response
    targets: tuple[float, ...]  # helpfulness, correctness, coherence, complexity, verbosity (0-4)


@dataclass(frozen=True)
class ScoreItem:
    """One prompt to score: its chosen and rejected completions (one each for a pair)."""

    chosen: tuple[Conversation, ...]
    rejected: tuple[Conversation, ...]
    subset: str | None = None
    id: str | None = None
    where: str = field(default="", compare=False)  # file:row, for errors about the item


@dataclass(frozen=True)
class Schema:
    name: str
    required: frozenset[str]  # columns every row of the schema has
    uses: frozenset[str]  # "preference", "regression", "score": what its rows can be read as

    def describe(self) -> str:
        return f"{self.name} ({', '.join(sorted(self.required))})"


SCHEMAS = {s.name: s for s in (  # detection order: the most specific first
    Schema("helpsteer2-preference", frozenset({"prompt", "response_1", "response_2", "preference_strength"}),
           frozenset({"preference", "score"})),
    Schema("helpsteer2", frozenset({"prompt", "response", *ATTRIBUTES}), frozenset({"regression"})),
    Schema("rewardbench2", frozenset({"prompt", "chosen", "rejected", "num_correct"}), frozenset({"score"})),
    Schema("rewardbench", frozenset({"prompt", "chosen", "rejected", "subset"}), frozenset({"preference", "score"})),
    Schema("hh-rlhf", frozenset({"chosen", "rejected"}), frozenset({"preference", "score"})),
    Schema("trl", frozenset({"chosen", "rejected"}), frozenset({"preference", "score"})),
)}
USE_WORDS = {"preference": "preference pairs (train --data, --eval-data)", "regression": "regression rows (train --data)",
             "score": "rows to score"}


@dataclass
class Examples:
    """The examples read from one file, and what was dropped."""

    items: list  # PreferenceExample, RegressionExample or ScoreItem
    schema: str  # the schema the file was read as
    counts: dict[str, int] = field(default_factory=dict)  # rows, kept, dropped_split, dropped_no_preference, ...


def _columns(row: Mapping[str, Any]) -> set[str]:
    """The row's columns that hold a value (Parquet and Arrow files give absent cells as nulls)."""
    return {k for k, v in row.items() if v is not None}


def detect(row: Mapping[str, Any]) -> Schema | None:
    """The schema a row's columns (and, for chosen/rejected text, its HH markers) belong to, else None."""
    columns = _columns(row)
    for schema in SCHEMAS.values():
        if not schema.required <= columns:
            continue
        if schema.name == "rewardbench2" and not isinstance(row.get("chosen"), list):
            continue
        if schema.name == "hh-rlhf" and ("prompt" in columns or not all(_is_hh(row.get(k)) for k in ("chosen", "rejected"))):
            continue
        return schema
    return None


def _unknown(path, row: Mapping[str, Any], n: int) -> DataError:
    known = "; ".join(s.describe() for s in SCHEMAS.values())
    return DataError(f"{path}:{n}: unknown row schema with columns {sorted(_columns(row))}; known schemas: {known} "
                     "(or force one with --schema)")


def read_examples(path: str | os.PathLike, use: str, *, schema: str | None = None, split: str | None = None,
                  strength_margin: bool = False) -> Examples:
    """Read every row of ``path`` as ``use`` ("preference", "regression" or "score"); DataError naming the
    file, row and column of the first bad row.

    ``schema`` forces a schema (default: recognised from the first row; every row must then be of it).
    ``split`` keeps only HelpSteer2-Preference rows of that split. ``strength_margin``: use
    ``|preference_strength|`` as the Bradley-Terry margin.
    """
    if schema is not None and schema not in SCHEMAS:
        raise DataError(f"unknown --schema {schema!r}; choose one of {', '.join(SCHEMAS)}")
    file_schema = SCHEMAS[schema] if schema else None
    items: list = []
    counts = {"rows": 0, "kept": 0}
    for n, row in read_rows(path):
        counts["rows"] += 1
        if file_schema is None:
            file_schema = detect(row)
            if file_schema is None:
                raise _unknown(path, row, n)
        item = parse_row(row, f"{path}:{n}", use, file_schema, forced=schema is not None, split=split,
                         strength_margin=strength_margin, counts=counts)
        if item is not None:
            items.append(item)
    if file_schema is None:
        raise DataError(f"{path}: no rows")
    if not items:
        dropped = {k: v for k, v in counts.items() if k.startswith("dropped") and v}
        raise DataError(f"{path}: no usable rows ({counts['rows']} read; dropped: {dropped or 'none'})")
    counts["kept"] = len(items)
    return Examples(items, file_schema.name, counts)


def parse_row(row: Mapping[str, Any], where: str, use: str, schema: Schema, *, forced: bool = False,
              split: str | None = None, strength_margin: bool = False, counts: dict | None = None):
    """One row of a file of ``schema`` as ``use`` needs it; None when it is dropped (and counted in
    ``counts``). ``forced``: the schema was named, so rows need not look like it beyond its columns."""
    if use not in schema.uses:
        raise DataError(f"{where}: {schema.name} rows cannot be used as {USE_WORDS[use]}; they serve as "
                        + " and ".join(USE_WORDS[u] for u in sorted(schema.uses)))
    missing = sorted(schema.required - _columns(row))
    if missing:
        raise DataError(f"{where}: column '{missing[0]}' is missing for schema {schema.name} "
                        f"(columns {sorted(_columns(row))})")
    found = detect(row)
    if not forced and found is not schema:
        other = found.name if found else f"no known schema (columns {sorted(_columns(row))})"
        raise DataError(f"{where}: mixed schemas: this row fits {other}, the file's first row {schema.name}; "
                        "keep one schema per file")
    return _PARSERS[schema.name](row, where, use=use, split=split, strength_margin=strength_margin,
                                 counts={} if counts is None else counts)


def prompt_key(example: PreferenceExample | RegressionExample) -> str | None:
    """The prompt an example answers, as comparable text ("role: content" per turn); None when unknown (a
    TRL text row without a prompt column). Training and validation examples with the same key share a prompt."""
    conversation = example.messages if isinstance(example, RegressionExample) else example.chosen
    if isinstance(conversation, str):
        return None if getattr(example, "prompt", None) is None else f"user: {example.prompt.strip()}"
    return "\n".join(f"{m['role']}: {m['content'].strip()}" for m in conversation[:-1])


# ----------------------------------------------------------------------------------------- cell checks
def _text(row: Mapping[str, Any], column: str, where: str, allow_empty: bool = False) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        raise DataError(f"{where}: column '{column}' must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(f"{where}: column '{column}' is empty")
    return value


def _number(row: Mapping[str, Any], column: str, where: str) -> float:
    value = row.get(column)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise DataError(f"{where}: column '{column}' must be a finite number, got {value!r:.40}")
    return float(value)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False


def _messages(value: Any, where: str, column: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: column '{column}' must be a string or a non-empty list of chat messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
            raise DataError(f"{where}: column '{column}'[{i}] must be {{'role': system|user|assistant, 'content': str}}")
        out.append({"role": m["role"], "content": m["content"]})
    if not out[-1]["content"].strip():
        raise DataError(f"{where}: column '{column}' ends with an empty message")
    return out


def _conversation(turns: list[Message], where: str, column: str) -> tuple[Message, ...]:
    if turns[-1]["role"] != "assistant":
        raise DataError(f"{where}: column '{column}': a conversation must end with an assistant turn")
    return tuple(turns)


def _merge_runs(turns: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n\n" + turn["content"]}
        else:
            merged.append(turn)
    return merged


def _is_hh(text: Any) -> bool:
    return isinstance(text, str) and text.startswith(("\n\nHuman:", "Human:"))


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


def _helpsteer_prompt(prompt: str, where: str) -> list[Message]:
    parts = _HS2_TURN.split(prompt)
    turns = [{"role": "user", "content": parts[0].strip()}]
    turns += [{"role": speaker.lower(), "content": body.strip()} for speaker, body in zip(parts[1::2], parts[2::2])]
    if "<extra_id_1>" in "".join(t["content"] for t in turns):
        raise DataError(f"{where}: column 'prompt' has an <extra_id_1> marker without 'User' or 'Assistant'")
    return _merge_runs(turns)


def _pair(chosen: Conversation, rejected: Conversation, counts: dict, use: str, where: str, *, margin: float = 0.0,
          subset: str | None = None, id: str | None = None, prompt: str | None = None,
          ) -> PreferenceExample | ScoreItem | None:
    """A pair as ``use`` needs it; None (counted) when both sides are the same."""
    if chosen == rejected:
        counts["dropped_identical"] = counts.get("dropped_identical", 0) + 1
        return None
    if use == "score":
        return ScoreItem((chosen,), (rejected,), subset, id, where)
    return PreferenceExample(chosen, rejected, margin, subset, id, prompt)


def _row_id(row: Mapping[str, Any]) -> str | None:
    return None if row.get("id") is None else str(row["id"])


# ------------------------------------------------------------------------------------------ schemas
def _helpsteer2(row, where, *, counts, **_) -> RegressionExample:
    targets = tuple(_number(row, name, where) for name in ATTRIBUTES)
    turns = _helpsteer_prompt(_text(row, "prompt", where), where)
    turns.append({"role": "assistant", "content": _text(row, "response", where)})
    return RegressionExample(_conversation(turns, where, "response"), targets)


def _helpsteer2_preference(row, where, *, use, split, strength_margin, counts, **_):
    if split is not None and "split" in row and row["split"] != split:
        counts["dropped_split"] = counts.get("dropped_split", 0) + 1
        return None
    strength = row.get("preference_strength")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not -3 <= strength <= 3:
        raise DataError(f"{where}: column 'preference_strength' must be a number in -3..3, got {strength!r:.40}")
    if strength == 0:
        counts["dropped_no_preference"] = counts.get("dropped_no_preference", 0) + 1
        return None
    prompt = _helpsteer_prompt(_text(row, "prompt", where), where)
    answers = {k: (*prompt, {"role": "assistant", "content": _text(row, k, where)}) for k in ("response_1", "response_2")}
    better, worse = ("response_1", "response_2") if strength < 0 else ("response_2", "response_1")
    margin = abs(float(strength)) if strength_margin else 0.0
    return _pair(answers[better], answers[worse], counts, use, where, margin=margin, id=_row_id(row))


def _rewardbench2(row, where, *, counts, **_) -> ScoreItem:
    prompt = [{"role": "user", "content": _text(row, "prompt", where)}]
    sides = {}
    for column in ("chosen", "rejected"):
        value = row.get(column)
        if not isinstance(value, list) or not value:
            raise DataError(f"{where}: column '{column}' must be a non-empty list of completions (strings)")
        for i, text in enumerate(value):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: column '{column}'[{i}] must be a non-empty string")
        sides[column] = tuple((*prompt, {"role": "assistant", "content": t}) for t in value)
    k = row.get("num_correct")
    if isinstance(k, bool) or not isinstance(k, int) or k != len(sides["chosen"]):
        raise DataError(f"{where}: column 'num_correct' must equal the {len(sides['chosen'])} chosen completions, "
                        f"got {k!r:.20}")
    return ScoreItem(sides["chosen"], sides["rejected"], _text(row, "subset", where), _row_id(row), where)


def _trl_like(row, where, *, use, counts, chat: bool = True, **_):
    """TRL, RewardBench and HH rows. ``chat=False`` (TRL): a string prompt and string answers stay text."""
    prompt = row.get("prompt")
    text_prompt = None  # TRL text rows: the prompt, kept apart for the train/validation overlap check
    subset = _text(row, "subset", where) if row.get("subset") is not None else None
    margin = _number(row, "margin", where) if row.get("margin") is not None else 0.0
    if prompt is None:
        if isinstance(row["chosen"], str) and isinstance(row["rejected"], str):
            if _is_hh(row["chosen"]) and _is_hh(row["rejected"]):
                sides = [_conversation(parse_hh_transcript(row[k], f"{where}: column '{k}'"), where, k)
                         for k in ("chosen", "rejected")]
            else:
                sides = [_text(row, k, where) for k in ("chosen", "rejected")]  # implicit prompt: whole texts
        elif isinstance(row["chosen"], str) or isinstance(row["rejected"], str):
            raise DataError(f"{where}: columns 'chosen' and 'rejected' must both be texts or both message lists "
                            "when there is no 'prompt' column")
        else:
            sides = [_conversation(_messages(row[k], where, k), where, k) for k in ("chosen", "rejected")]
    elif not chat and isinstance(prompt, str) and all(isinstance(row[k], str) for k in ("chosen", "rejected")):
        text_prompt = _text(row, "prompt", where)
        sides = [text_prompt + _text(row, k, where) for k in ("chosen", "rejected")]  # TRL: prompt + completion
    else:
        head = [{"role": "user", "content": _text(row, "prompt", where)}] if isinstance(prompt, str) \
            else _messages(prompt, where, "prompt")
        sides = []
        for k in ("chosen", "rejected"):
            answer = row[k]
            if isinstance(answer, str):
                turns = [*head, {"role": "assistant", "content": _text(row, k, where)}]
            else:
                answer = _messages(answer, where, k)
                turns = answer if answer[: len(head)] == head else [*head, *answer]
            sides.append(_conversation(turns, where, k))
    return _pair(sides[0], sides[1], counts, use, where, margin=margin, subset=subset, id=_row_id(row),
                 prompt=text_prompt)


_PARSERS = {"helpsteer2": _helpsteer2, "helpsteer2-preference": _helpsteer2_preference,
            "rewardbench2": _rewardbench2, "rewardbench": _trl_like, "hh-rlhf": _trl_like,
            "trl": functools.partial(_trl_like, chat=False)}
