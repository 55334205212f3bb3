"""``basepick score``: reward every chosen/rejected pair of a JSONL file with a reward-model directory.

Row formats (one JSON object per line):
* ``{"chosen": "text", "rejected": "text"}``: plain text, tokenized as ``tokenizer(text)`` does;
* ``{"chosen": [messages], "rejected": [messages]}``: chat message lists, via the chat template;
* ``{"prompt": "text" | [messages], "chosen": "text" | [messages], "rejected": ...}``: the prompt as a
  user turn (or the given turns), each response as an assistant turn, via the chat template.
Optional ``id`` and ``subset`` fields are copied to the output; when every row has a ``subset`` the
RewardBench v1 sections are computed (``trainer_jax.evals.rewardbench.score_v1``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from predictor.errors import ArtifactError, DataError
from trainer_jax import require_train_extra
from trainer_jax.data.readers import read_jsonl
from trainer_jax.data.tokenizer import (
    check_messages,
    encode_chat,
    encode_text,
    load_tokenizer,
)

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ScoreReport:
    n_pairs: int  # rows scored
    accuracy: float  # share of rows with chosen_score > rejected_score (a tie is wrong), 0-1
    mean_margin: float  # mean of chosen_score - rejected_score, reward units
    out_path: str | None  # where the per-row scores were written, None if not written
    rewardbench: Any  # trainer_jax.evals.rewardbench.RewardBenchResult (v1) when rows carry a subset, else None
    rows: tuple[dict[str, Any], ...] = dataclasses.field(repr=False)  # per input row, in input order

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with ``schema_version`` (per-row scores are in ``rows`` / the out file)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "pairs": self.n_pairs,
            "accuracy": self.accuracy,
            "mean_margin": self.mean_margin,
            "out": self.out_path,
            "rewardbench": None if self.rewardbench is None else self.rewardbench.to_dict(),
        }


def read_pairs(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every non-blank line of a JSONL(.gz) file; DataError naming bad lines."""
    rows = list(read_jsonl(path))
    if not rows:
        raise DataError(f"{path}: no rows to score")
    return rows


def _turns(value: Any, role: str) -> list[dict[str, str]] | None:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return check_messages(value)


def encode_row(tok, row: dict[str, Any], where: str) -> tuple[list[int], list[int]]:
    """Token ids of (chosen, rejected) for one row; DataError prefixed with ``where`` (file:line)."""
    for field in ("chosen", "rejected"):
        if field not in row:
            raise DataError(f"{where}: missing field '{field}'")
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    try:
        if prompt is None and isinstance(chosen, str) and isinstance(rejected, str):
            ids = encode_text(tok, chosen), encode_text(tok, rejected)
        elif prompt is None:
            c, r = check_messages(chosen), check_messages(rejected)
            if c is None or r is None:
                raise DataError(
                    "'chosen' and 'rejected' must both be strings or both lists of {role, content} messages"
                )
            ids = encode_chat(tok, c), encode_chat(tok, r)
        else:
            turns = _turns(prompt, "user")
            c, r = _turns(chosen, "assistant"), _turns(rejected, "assistant")
            if turns is None or c is None or r is None:
                raise DataError(
                    "'prompt', 'chosen' and 'rejected' must be strings or lists of {role, content} messages"
                )
            ids = encode_chat(tok, turns + c), encode_chat(tok, turns + r)
    except DataError as exc:
        if str(exc).startswith(where):
            raise
        raise DataError(f"{where}: {exc}") from None
    for field, seq in zip(("chosen", "rejected"), ids):
        if not seq:
            raise DataError(f"{where}: '{field}' encodes to no tokens")
    return ids


def _bucket(n: int) -> int:
    """Padded length for n tokens: powers of two from 16 to 128, then multiples of 128 (few compilations)."""
    if n <= 128:
        return max(16, 1 << (n - 1).bit_length())
    return -(-n // 128) * 128


def reward_pairs(model, encoded: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int):
    """Rewards of (chosen ids, rejected ids) pairs -> chosen, rejected arrays (N, num_labels) float32.

    Pairs are sorted by length (longest first) and padded to a few bucketed lengths; every batch holds
    ``batch_size`` pairs (filler rows are dropped) and chosen + rejected go through one forward pass.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from trainer_jax.models.heads import pair_rewards

    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, c_ids, c_mask, r_ids, r_mask):
        return pair_rewards(nnx.merge(graphdef, state), c_ids, c_mask, r_ids, r_mask)  # 2 x (B, L)

    n = len(encoded)
    chosen = np.zeros((n, model.num_labels), np.float32)  # (N, L)
    rejected = np.zeros((n, model.num_labels), np.float32)  # (N, L)
    longest = [max(len(c), len(r)) for c, r in encoded]  # (N,) tokens
    order = sorted(range(n), key=lambda i: -longest[i])
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        arrays = np.zeros((4, batch_size, _bucket(longest[idx[0]])), np.int32)  # c ids, c mask, r ids, r mask
        arrays[1, :, 0] = arrays[3, :, 0] = 1  # filler rows hold one token so that no row is empty
        for b, i in enumerate(idx):
            for side, seq in enumerate(encoded[i]):
                arrays[2 * side, b, : len(seq)] = seq
                arrays[2 * side + 1, b, : len(seq)] = 1
        rc, rr = forward(state, *(jnp.asarray(a) for a in arrays))
        chosen[idx] = np.asarray(rc)[: len(idx)]
        rejected[idx] = np.asarray(rr)[: len(idx)]
    return chosen, rejected


def score_pairs(
    model_dir: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    weights: Sequence[float] | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> ScoreReport:
    """Score every pair of ``data`` with the reward model in ``model_dir``; write per-row scores to ``out``.

    ``batch_size`` counts pairs (each forward pass holds 2 * batch_size sequences, chosen and rejected
    together). ``weights`` scalarises a multi-output (regression) model; required when it has > 1 output.
    """
    require_train_extra()
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    import jax.numpy as jnp
    import numpy as np

    from trainer_jax import enable_compile_cache
    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.hf_import import load_reward_model, read_model_dir

    read_model_dir(model_dir)  # a bad model directory is reported before any data work
    rows = read_pairs(data)
    tok = load_tokenizer(model_dir)
    encoded = [encode_row(tok, row, f"{data}:{lineno}") for lineno, row in rows]
    subsets = [row.get("subset") for _, row in rows]
    if any(s is not None for s in subsets) and not all(isinstance(s, str) for s in subsets):
        lineno = next(ln for (ln, _), s in zip(rows, subsets) if not isinstance(s, str))
        raise DataError(f"{data}:{lineno}: 'subset' missing or not a string while other rows carry one")

    enable_compile_cache()
    model = load_reward_model(model_dir, dtype=jnp.dtype(dtype))
    note(choose_attention(model.cfg, jnp.dtype(dtype)).describe())
    if model.num_labels > 1 and (weights is None or len(weights) != model.num_labels):
        raise DataError(f"{model_dir} has {model.num_labels} reward outputs; pass {model.num_labels} weights")
    w = np.asarray(weights if weights is not None else [1.0], dtype=np.float32)  # (L,)

    chosen_out, rejected_out = reward_pairs(model, encoded, batch_size)  # (N, L) each
    chosen_score, rejected_score = chosen_out @ w, rejected_out @ w  # (N,) scalar rewards
    if not (np.all(np.isfinite(chosen_score)) and np.all(np.isfinite(rejected_score))):
        raise ArtifactError(f"{model_dir} produced non-finite rewards; check the model weights and dtype")
    records = []
    for k, (_, row) in enumerate(rows):
        record = {key: row[key] for key in ("id", "subset") if key in row}
        record.update(chosen_score=float(chosen_score[k]), rejected_score=float(rejected_score[k]))
        if model.num_labels > 1:
            record.update(chosen_scores=chosen_out[k].tolist(), rejected_scores=rejected_out[k].tolist())
        records.append(record)

    from trainer_jax.evals import rewardbench

    if out is not None:
        rewardbench.write_jsonl_atomic(out, records)
    rb = rewardbench.score_v1(records, source=str(data)) if subsets and all(subsets) else None
    margin = chosen_score - rejected_score  # (N,)
    return ScoreReport(
        n_pairs=len(rows),
        accuracy=float(np.mean(margin > 0)),
        mean_margin=float(np.mean(margin)),
        out_path=None if out is None else str(out),
        rewardbench=rb,
        rows=tuple(records),
    )


def render_table(report: ScoreReport) -> str:
    """The summary as plain aligned text (the rows are JSON lines)."""
    lines = [f"pairs        {report.n_pairs}", f"accuracy     {100 * report.accuracy:.2f}%",
             f"mean margin  {report.mean_margin:.4f}"]
    rb = report.rewardbench
    if rb is not None:
        lines.append("RewardBench v1" + ("" if rb.complete else " (partial: some subsets missing)"))
        lines += [f"  {section:<11}{100 * value:.2f}" for section, value in rb.sections.items()]
        lines.append(f"  {'Score':<11}" + ("n/a" if rb.overall is None else f"{100 * rb.overall:.2f}"))
    return "\n".join(lines)
