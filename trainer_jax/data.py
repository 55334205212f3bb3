"""Preference and regression data: readers, tokenization and length-bucketed, resumable numpy batches.

Readers normalise every supported row format to chat messages (``[{"role": ..., "content": ...}]``):

* ``prompt`` + ``chosen``/``rejected`` as strings (the prompt becomes one user turn) or as message lists
  (``prompt`` a string or messages; ``chosen``/``rejected`` either the answer turns or the full conversation);
* ``chosen``/``rejected`` as full message lists, no prompt;
* Anthropic HH transcripts: ``chosen``/``rejected`` strings of ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``;
  consecutive turns of one speaker (13 of 4,624 HH harmless-base test transcripts) are merged;
* HelpSteer2 rows (``prompt``, ``response`` and the five attributes) for the regression recipe; multi-turn
  prompts use HelpSteer2's ``<extra_id_1>User`` / ``<extra_id_1>Assistant`` turn markers.

Text is rendered with the tokenizer's chat template when it has one and encoded without adding special
tokens again (the template carries them). Without a template the plain format is ``"User: ...\\n\\nAssistant:
..."`` (roles capitalised, turns joined by a blank line), encoded with the tokenizer's special tokens, plus EOS
when the tokenizer has one and did not add it. Batches are right-padded; models pool at the last real token
found from ``attention_mask``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predictor.errors import DataError

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


# -------------------------------------------------------------------------------------------- reading
def read_jsonl(path: str | os.PathLike, what: str = "data file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` for each non-blank line of a JSONL or JSONL.gz file.

    Errors name the file (as ``what``: "data file", "corpus file", ...) and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                yield lineno, row
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read {what} ({e})") from None


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


# --------------------------------------------------------------------------------------- tokenization
@dataclass(frozen=True)
class TokenizeConfig:
    """How conversations become token ids."""

    max_length: int = 2048  # most tokens per sequence; longer examples are filtered or left-truncated
    truncate_left: bool = False  # True: keep the last max_length tokens; False: drop over-length examples


@dataclass(frozen=True)
class TokenizedData:
    """Token ids of kept examples plus what happened to the rest."""

    sequences: tuple[tuple[np.ndarray, ...], ...]  # per example (chosen, rejected) or (sequence,); int32 ids
    targets: np.ndarray | None  # (N, 5) float32 regression targets; None for preference pairs
    source_index: np.ndarray  # (N,) int64 position of each kept example in the input list
    n_filtered: int  # examples dropped because a sequence was longer than max_length
    n_truncated: int  # examples kept after left-truncating at least one sequence

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 longest sequence of each example."""
        return np.array([max(len(s) for s in seqs) for seqs in self.sequences], dtype=np.int64)


def render(tokenizer: Any, messages: Sequence[Message]) -> str:
    """A conversation as text: the tokenizer's chat template, else the plain 'Role: content' format."""
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=False)
        except Exception as e:  # jinja errors from templates that refuse a conversation (e.g. a system turn)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            roles = "/".join(m["role"] for m in messages)
            raise DataError(f"the tokenizer's chat template rejected a {roles} conversation ({first})") from None
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def encode(tokenizer: Any, conversations: Sequence[Sequence[Message]]) -> list[list[int]]:
    """Token ids of each conversation (batched through the tokenizer)."""
    texts = [render(tokenizer, c) for c in conversations]
    if getattr(tokenizer, "chat_template", None):
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    eos = tokenizer.eos_token_id
    out = [list(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    return [ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids for ids in out]


def tokenize_preferences(examples: Sequence[PreferenceExample], tokenizer: Any,
                         config: TokenizeConfig = TokenizeConfig()) -> TokenizedData:
    """Tokenize pairs; a pair with an over-length side is dropped or left-truncated (counted)."""
    chosen = encode(tokenizer, [e.chosen for e in examples])
    rejected = encode(tokenizer, [e.rejected for e in examples])
    return _fit(list(zip(chosen, rejected)), None, config)


def tokenize_regression(examples: Sequence[RegressionExample], tokenizer: Any,
                        config: TokenizeConfig = TokenizeConfig()) -> TokenizedData:
    """Tokenize regression examples with their (N, 5) targets; over-length handled as for pairs."""
    ids = encode(tokenizer, [e.messages for e in examples])
    targets = np.array([e.targets for e in examples], dtype=np.float32).reshape(len(examples), len(ATTRIBUTES))
    return _fit([(s,) for s in ids], targets, config)


def _fit(examples: list[tuple[list[int], ...]], targets: np.ndarray | None, config: TokenizeConfig) -> TokenizedData:
    if config.max_length < 1:
        raise ValueError("max_length must be positive")
    if not examples:
        raise DataError("no examples to tokenize")
    kept, index, n_filtered, n_truncated = [], [], 0, 0
    for i, seqs in enumerate(examples):
        if any(not s for s in seqs):
            raise DataError(f"example {i}: tokenized to an empty sequence")
        if max(len(s) for s in seqs) > config.max_length:
            if not config.truncate_left:
                n_filtered += 1
                continue
            n_truncated += 1
            seqs = tuple(s[-config.max_length:] for s in seqs)  # left truncation keeps the final answer
        kept.append(tuple(np.asarray(s, dtype=np.int32) for s in seqs))
        index.append(i)
    if not kept:
        raise DataError(f"every example is longer than max_length={config.max_length}; raise it or truncate")
    source = np.asarray(index, dtype=np.int64)
    return TokenizedData(tuple(kept), None if targets is None else targets[source], source, n_filtered, n_truncated)


# ------------------------------------------------------------------------------------------- batching
@dataclass(frozen=True)
class BatchConfig:
    """How tokenized examples are grouped, padded and ordered."""

    batch_size: int = 8  # examples (pairs) per batch, B
    pad_multiple: int = 128  # pad the sequence axis up to a multiple of this
    max_length: int | None = None  # cap on the padded length T (None: no cap)
    window_batches: int = 32  # length-sort within windows of this many batches of shuffled examples
    seed: int = 0  # shuffling seed; epoch e uses np.random.default_rng([seed, e])
    shuffle: bool = True  # False: input order, length-sorted inside each window, no batch shuffling
    drop_last: bool = False  # drop the short last batch instead of filling it with invalid rows
    pad_id: int = 0  # token id of padding (never attended, so any id works)


@dataclass(frozen=True)
class DataPosition:
    """Where a data stream stands: resume with ``iterate_batches(..., start=position)``."""

    epoch: int = 0  # 0-based epoch
    index: int = 0  # batches of this epoch already yielded


@dataclass(frozen=True)
class Batch:
    """One padded batch; pairs put all chosen rows first, then all rejected rows."""

    input_ids: np.ndarray  # (2B, T) int32 for pairs (rows b and B+b are one pair); (B, T) for regression
    attention_mask: np.ndarray  # same shape, int32, 1 on real tokens (right padding)
    targets: np.ndarray | None  # (B, 5) float32 regression targets; None for pairs
    valid: np.ndarray  # (B,) bool, False on filler rows that complete a short last batch
    indices: np.ndarray  # (B,) int64 example index into TokenizedData, -1 on filler rows
    position: DataPosition  # the stream position after this batch (checkpoint this)


def epoch_plan(lengths: np.ndarray, config: BatchConfig, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch as arrays of example indices (deterministic from seed and epoch)."""
    n, bsz = len(lengths), config.batch_size
    if bsz < 1 or config.window_batches < 1 or config.pad_multiple < 1:
        raise ValueError("batch_size, window_batches and pad_multiple must be positive")
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(n) if config.shuffle else np.arange(n)  # (N,)
    window = bsz * config.window_batches
    batches = []
    for start in range(0, n, window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]  # similar lengths share a batch
        batches += [chunk[i:i + bsz] for i in range(0, len(chunk), bsz)]
    if config.drop_last and batches and len(batches[-1]) < bsz:
        batches.pop()
    if config.shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def make_batch(data: TokenizedData, idx: np.ndarray, config: BatchConfig, position: DataPosition) -> Batch:
    """Pad the examples ``idx`` into one batch of exactly ``batch_size`` rows per side."""
    bsz = config.batch_size
    sides = len(data.sequences[idx[0]])
    longest = max(len(s) for i in idx for s in data.sequences[i])
    t = -(-longest // config.pad_multiple) * config.pad_multiple
    if config.max_length is not None:
        if longest > config.max_length:
            raise ValueError(f"a sequence of {longest} tokens exceeds BatchConfig.max_length={config.max_length}")
        t = min(t, config.max_length)
    input_ids = np.full((sides * bsz, t), config.pad_id, dtype=np.int32)  # (2B, T) or (B, T)
    mask = np.zeros((sides * bsz, t), dtype=np.int32)  # (2B, T) or (B, T)
    for b, i in enumerate(idx):
        for side, seq in enumerate(data.sequences[i]):
            input_ids[side * bsz + b, : len(seq)] = seq
            mask[side * bsz + b, : len(seq)] = 1
    indices = np.full(bsz, -1, dtype=np.int64)  # (B,)
    indices[: len(idx)] = idx
    targets = None
    if data.targets is not None:
        targets = np.zeros((bsz, data.targets.shape[1]), dtype=np.float32)  # (B, 5)
        targets[: len(idx)] = data.targets[idx]
    return Batch(input_ids, mask, targets, indices >= 0, indices, position)


def num_batches(n_examples: int, config: BatchConfig) -> int:
    """Batches per epoch for ``n_examples`` examples."""
    full, rest = divmod(n_examples, config.batch_size)
    return full + (1 if rest and not config.drop_last else 0)


def iterate_batches(data: TokenizedData, config: BatchConfig, start: DataPosition = DataPosition(),
                    num_epochs: int | None = None) -> Iterator[Batch]:
    """Yield batches from ``start`` until ``num_epochs`` epochs are done (forever when None).

    The stream is a pure function of (data, config, position): resuming from a checkpointed
    ``Batch.position`` yields exactly the batches an uninterrupted run would have yielded next.
    """
    lengths = data.lengths
    epoch, index = start.epoch, start.index
    while num_epochs is None or epoch < num_epochs:
        plan = epoch_plan(lengths, config, epoch)
        if not plan:
            return
        for k in range(index, len(plan)):
            after = DataPosition(epoch, k + 1) if k + 1 < len(plan) else DataPosition(epoch + 1, 0)
            yield make_batch(data, plan[k], config, after)
        epoch, index = epoch + 1, 0
