"""Tokenizer loading and encoding for reward models (transformers' AutoTokenizer, local files only).

Pad token rule: a tokenizer without a pad token falls back to its eos token. That is safe here because
trainer_jax never looks for pad ids (pooling and positions come from the attention mask); a tokenizer with
neither is an ArtifactError. Plain text is encoded exactly as the tokenizer does by default (special
tokens included); chat messages go through the tokenizer's chat template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from predictor.errors import ArtifactError, DataError
from trainer_jax import require_train_extra

Messages = list[dict[str, str]]  # [{"role": "user", "content": "..."}, ...]


def load_tokenizer(model_dir: str | Path):
    """``AutoTokenizer.from_pretrained(model_dir)`` from local files, with a pad token guaranteed."""
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
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ArtifactError(
                f"{model_dir}: the tokenizer has no pad token and no eos token to pad with; "
                "set pad_token in its tokenizer_config.json"
            )
        tok.pad_token = tok.eos_token
    return tok


def encode_text(tok, text: str) -> list[int]:
    """Token ids of plain text, exactly as ``tok(text)`` gives them (default special tokens)."""
    return list(tok(text)["input_ids"])


def check_messages(value: Any) -> Messages | None:
    """The value as a chat message list, or None if it is not one (list of {role, content} strings)."""
    if not isinstance(value, list) or not value:
        return None
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return None
        if not isinstance(message.get("content"), str):
            return None
    return [{"role": m["role"], "content": m["content"]} for m in value]


def encode_chat(tok, messages: Messages) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's chat template (no generation prompt)."""
    if not getattr(tok, "chat_template", None):
        raise DataError("this row holds chat messages but the model's tokenizer has no chat template")
    try:
        encoded = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=False, return_dict=True)
    except Exception as exc:  # jinja errors, e.g. a template that refuses a system turn or non-alternating roles
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        roles = "/".join(m["role"] for m in messages)
        raise DataError(f"the tokenizer's chat template rejected a {roles} conversation ({reason})") from None
    return list(encoded["input_ids"])
