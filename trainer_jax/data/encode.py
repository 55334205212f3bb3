"""Rendering and tokenization: the one path from conversations to token ids, for train and score alike.

* Chat messages with a tokenizer that has a chat template: the template renders them (no generation
  prompt) and the text is encoded without adding special tokens again (the template carries them).
* Chat messages with a tokenizer that has none: the documented fallback ``"User: ...\\n\\nAssistant:
  ..."`` (roles capitalised, turns joined by a blank line), encoded with the tokenizer's special tokens,
  plus EOS when the tokenizer has one and did not add it.
* Plain text (TRL's standard rows: ``prompt + completion``, or the whole text): as TRL's ``RewardTrainer``
  encodes it, the tokenizer's EOS text appended unless the text ends with it, then ``tokenizer(text)``
  with its default special tokens.

Too long sequences are dropped (training) or keep their last ``max_length`` tokens (``truncate_left``;
scoring always truncates from the left, as reward-bench does), and both are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.errors import DataError
from trainer_jax.data.schemas import ATTRIBUTES, Conversation, PreferenceExample, RegressionExample, ScoreItem


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
    margins: np.ndarray | None  # (N,) float32 Bradley-Terry margins; None for regression rows
    source_index: np.ndarray  # (N,) int64 position of each kept example in the input list
    n_filtered: int  # examples dropped because a sequence was longer than max_length
    n_truncated: int  # examples kept after left-truncating at least one sequence

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 longest sequence of each example."""
        return np.array([max(len(s) for s in seqs) for seqs in self.sequences], dtype=np.int64)


def render(tokenizer: Any, conversation: Conversation) -> str:
    """A conversation as text: plain text as it is; messages through the chat template, else the fallback."""
    if isinstance(conversation, str):
        return conversation
    messages = list(conversation)
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        except Exception as e:  # jinja errors from templates that refuse a conversation (e.g. a system turn)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            roles = "/".join(m["role"] for m in messages)
            raise DataError(f"the tokenizer's chat template rejected a {roles} conversation ({first})") from None
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def encode(tokenizer: Any, conversations: Sequence[Conversation]) -> list[list[int]]:
    """Token ids of each conversation, batched through the tokenizer (see the module docstring)."""
    templated = bool(getattr(tokenizer, "chat_template", None))
    texts = [render(tokenizer, c) for c in conversations]
    chat = [i for i, c in enumerate(conversations) if not isinstance(c, str)]
    plain = [i for i, c in enumerate(conversations) if isinstance(c, str)]
    out: list[list[int]] = [[] for _ in conversations]
    if chat:
        ids = tokenizer([texts[i] for i in chat], add_special_tokens=not templated)["input_ids"]
        eos = None if templated else tokenizer.eos_token_id
        for i, seq in zip(chat, ids):
            seq = list(seq)
            out[i] = seq + [eos] if eos is not None and (not seq or seq[-1] != eos) else seq
    if plain:
        eos = tokenizer.eos_token or ""
        with_eos = [texts[i] if texts[i].endswith(eos) else texts[i] + eos for i in plain]  # TRL's add_eos
        for i, seq in zip(plain, tokenizer(with_eos)["input_ids"]):
            out[i] = list(seq)
    return out


def tokenize_preferences(examples: Sequence[PreferenceExample], tokenizer: Any,
                         config: TokenizeConfig = TokenizeConfig()) -> TokenizedData:
    """Tokenize pairs with their margins; a pair with an over-length side is dropped or left-truncated."""
    chosen = encode(tokenizer, [e.chosen for e in examples])
    rejected = encode(tokenizer, [e.rejected for e in examples])
    margins = np.array([e.margin for e in examples], dtype=np.float32)  # (N,)
    return _fit(list(zip(chosen, rejected)), None, margins, config)


def tokenize_regression(examples: Sequence[RegressionExample], tokenizer: Any,
                        config: TokenizeConfig = TokenizeConfig()) -> TokenizedData:
    """Tokenize regression examples with their (N, 5) targets; over-length handled as for pairs."""
    ids = encode(tokenizer, [e.messages for e in examples])
    targets = np.array([e.targets for e in examples], dtype=np.float32).reshape(len(examples), len(ATTRIBUTES))
    return _fit([(s,) for s in ids], targets, None, config)


def tokenize_items(items: Sequence[ScoreItem], tokenizer: Any, max_length: int) -> tuple[list[list[list[int]]], int]:
    """Every completion of every item, chosen ones first, left-truncated to ``max_length`` tokens.

    Returns (per item: the token ids of its completions, the number of completions truncated).
    """
    flat = [c for item in items for c in (*item.chosen, *item.rejected)]
    ids = encode(tokenizer, flat)
    truncated = sum(len(s) > max_length for s in ids)
    out, k = [], 0
    for item in items:
        n = len(item.chosen) + len(item.rejected)
        out.append([s[-max_length:] for s in ids[k : k + n]])
        k += n
    return out, truncated


def _fit(examples: list[tuple[list[int], ...]], targets: np.ndarray | None, margins: np.ndarray | None,
         config: TokenizeConfig) -> TokenizedData:
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
    return TokenizedData(tuple(kept), None if targets is None else targets[source],
                         None if margins is None else margins[source], source, n_filtered, n_truncated)
