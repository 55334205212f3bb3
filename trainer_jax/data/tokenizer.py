"""Tokenizer loading and encoding for reward models (transformers' AutoTokenizer, local files only).

trainer_jax never reads pad ids (pooling and positions come from the attention mask), so the tokenizer
is used as it comes. An exported model is different: transformers' ``*ForSequenceClassification`` pools
at the last token that is not ``config.pad_token_id``. If that id can occur in text, e.g. pad == eos
with a chat template that ends every turn with eos (Llama-3-Instruct, Mistral), transformers pools one
token early and its rewards differ from the trainer's. ``choose_pad_token`` picks, before training, a pad
token that never occurs in the data, or refuses. Encoding lives in ``trainer_jax.data.encode``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from predictor.errors import ArtifactError
from trainer_jax import require_train_extra


def load_tokenizer(model_dir: str | Path):
    """``AutoTokenizer.from_pretrained(model_dir)`` from local files only; ArtifactError naming the problem."""
    require_train_extra()
    from transformers import AutoTokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise ArtifactError(f"{path}: tokenizer directory not found")
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ArtifactError(f"{path}: no tokenizer files (tokenizer.json, tokenizer_config.json or tokenizer.model)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError/... for missing or broken files
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path}: cannot load its tokenizer ({reason})") from None
    return tok


def check_ids_fit(used_ids, vocab_size: int, model_dir) -> None:
    """ArtifactError when the tokenizer makes an id the embedding has no row for (XLA would clamp it silently)."""
    top = max(used_ids, default=-1)
    if top >= vocab_size:
        raise ArtifactError(f"{model_dir}: its tokenizer makes token id {top} but the model's embedding has "
                            f"{vocab_size} rows (config.json vocab_size): the tokenizer does not belong to these "
                            "weights; put the model's own tokenizer files beside them")


NEW_PAD_TOKEN = "<|basepick_pad|>"  # appended when nothing else qualifies and the embedding has a spare row


@dataclass(frozen=True)
class PadToken:
    """The pad token an exported reward model declares (config.json and its tokenizer)."""

    id: int  # token id; never occurs in the training, validation or scoring data
    token: str  # its text, set as the exported tokenizer's pad_token
    added: bool  # True: a new special token appended to the tokenizer (an unused embedding row)
    reason: str  # why this one, for the run's notes

    def to_json(self) -> dict:
        return {"id": self.id, "token": self.token, "added": self.added, "reason": self.reason}


def choose_pad_token(tok, vocab_size: int, used_ids: Iterable[int] = ()) -> PadToken:
    """A pad id that transformers can pool with: distinct from bos/eos and absent from ``used_ids``.

    Candidates in order: the tokenizer's own pad token, its unk token, special tokens reserved or named
    for padding (Llama-3's ``<|reserved_special_token_N|>``, ``<pad>``-like tokens), then a new
    ``NEW_PAD_TOKEN`` when the embedding has a row the tokenizer never produces (``len(tok) <
    vocab_size``). ArtifactError when none qualifies, saying how to fix the tokenizer.
    """
    used = set(used_ids) | {i for i in (tok.bos_token_id, tok.eos_token_id) if i is not None}
    candidates = [(tok.pad_token, "the tokenizer's pad token"), (tok.unk_token, "the tokenizer's unk token")]
    for token in getattr(tok, "added_tokens_decoder", {}).values():
        content = str(token)
        if getattr(token, "special", False) and re.search(r"reserved|pad", content, re.IGNORECASE):
            candidates.append((content, "a reserved special token"))
    for token, reason in candidates:
        if token is None:
            continue
        token_id = tok.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and 0 <= token_id < vocab_size and token_id not in used:
            return PadToken(token_id, token, False, reason + ", absent from the data")
    if len(tok) < vocab_size:
        return PadToken(len(tok), NEW_PAD_TOKEN, True, f"a new token on the unused embedding row {len(tok)}")
    raise ArtifactError(
        "cannot give the exported model a pad token: the tokenizer's pad/unk/reserved tokens are missing, equal "
        "eos or occur in the data, and its vocabulary fills the embedding; transformers would pool at the "
        "wrong token. Set a pad_token that never occurs in text in the base model's tokenizer_config.json"
    )
