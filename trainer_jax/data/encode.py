"""Rendering and tokenization: conversations to token ids, with over-length examples dropped or truncated.

Text is rendered with the tokenizer's chat template when it has one and encoded without adding special
tokens again (the template carries them). Without a template the plain format is ``"User: ...\\n\\nAssistant:
..."`` (roles capitalised, turns joined by a blank line), encoded with the tokenizer's special tokens, plus EOS
when the tokenizer has one and did not add it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.errors import DataError
from trainer_jax.data.schemas import (
    ATTRIBUTES,
    Message,
    PreferenceExample,
    RegressionExample,
)


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

