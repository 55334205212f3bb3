"""``basepick score``: reward every completion of a data file with a trained reward model.

Reads any file and schema ``trainer_jax.data.schemas`` knows (pairs: TRL, HH-RLHF, RewardBench v1,
HelpSteer2-Preference; best-of-n: RewardBench 2) through the same rendering and tokenization as
``train``, left-truncating each completion to ``max_length`` tokens as reward-bench does. Reports pairwise
accuracy (a tie is wrong), and RewardBench v1 sections when the pairs name their subsets (which must then
be RewardBench's: checked before any model work), or the RewardBench 2 score for RewardBench 2 rows, whatever
their numbers of chosen and rejected completions (``trainer_jax.evals.rewardbench``).

A model directory must hold a trained head (``*ForSequenceClassification``): a base ``*ForCausalLM``
would be scored with a random head, so it is refused. A multi-output (5-attribute) head is scalarised by
``weights``, by default the merge weights ``train`` recorded in its config.json.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from predictor.data.atomic import check_writable
from predictor.errors import ArtifactError, DataError
from trainer_jax import require_train_extra

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ScoreReport:
    n_items: int  # prompts scored (pairs, or best-of-n prompts)
    schema: str  # the row schema the file was read as
    accuracy: float  # share of prompts whose every chosen completion beats every rejected one (ties wrong)
    mean_margin: float  # mean of (worst chosen - best rejected) reward, reward units
    counts: dict[str, int]  # rows read, kept, dropped (and why), completions truncated
    out_path: str | None  # where the per-row scores were written, None if not written
    rewardbench: Any  # RewardBenchResult (v1 or v2) when the rows carry RewardBench subsets, else None
    rows: tuple[dict[str, Any], ...] = dataclasses.field(repr=False)  # per item, in input order

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with ``schema_version`` (per-row scores are in ``rows`` / the out file)."""
        return {"schema_version": SCHEMA_VERSION, "items": self.n_items, "schema": self.schema,
                "accuracy": self.accuracy, "mean_margin": self.mean_margin, "counts": self.counts,
                "out": self.out_path, "rewardbench": None if self.rewardbench is None else self.rewardbench.to_dict()}


def reward_sequences(model, sequences: Sequence[Sequence[int]], rows: int, buckets: tuple[int, ...]):
    """Rewards (N, num_labels) float32 of token sequences, ``rows`` per forward pass, longest first, padded
    to the few bucket lengths (bounded compilations); filler rows hold one token and are dropped."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from trainer_jax.data.batching import bucket_length

    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, ids, mask):
        return nnx.merge(graphdef, state)(ids, mask)  # (rows, L)

    n = len(sequences)
    out = np.zeros((n, model.num_labels), np.float32)  # (N, L)
    order = sorted(range(n), key=lambda i: -len(sequences[i]))
    for start in range(0, n, rows):
        idx = order[start : start + rows]
        t = bucket_length(len(sequences[idx[0]]), buckets)
        ids = np.zeros((rows, t), np.int32)  # (rows, T) right-padded
        mask = np.zeros((rows, t), np.int32)
        mask[:, 0] = 1  # filler rows hold one token so that no row is empty
        for b, i in enumerate(idx):
            ids[b, : len(sequences[i])] = sequences[i]
            mask[b, : len(sequences[i])] = 1
        out[idx] = np.asarray(forward(state, jnp.asarray(ids), jnp.asarray(mask)))[: len(idx)]
    return out


def _head_weights(src, weights: Sequence[float] | None, model_dir) -> list[float]:
    """The weights that turn the model's outputs into one reward; DataError when they cannot."""
    from trainer_jax.models.hf_export import MERGE_KEY

    n = src.num_labels
    if weights is None:
        recorded = src.hf_config.get(MERGE_KEY) or {}
        names = [(src.hf_config.get("id2label") or {}).get(str(i)) for i in range(n)]
        if n > 1 and all(name in recorded for name in names):
            return [float(recorded[name]) for name in names]  # in output order (config.json sorts its keys)
        if n > 1:
            raise DataError(f"{model_dir} has {n} reward outputs and records no merge weights; pass --weights "
                            f"with {n} numbers")
        return [1.0]
    if len(weights) != n:
        raise DataError(f"--weights has {len(weights)} values but {model_dir} has {n} reward output(s)")
    return list(weights)


def score_file(
    model_dir: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    weights: Sequence[float] | None = None,
    schema: str | None = None,
    split: str | None = None,
    max_length: int = 2048,
    note: Callable[[str], None] = lambda message: None,
) -> ScoreReport:
    """Score every completion of ``data`` with the reward model in ``model_dir``; per-row scores to ``out``.

    ``batch_size`` counts pairs: a forward pass holds ``2 * batch_size`` sequences.
    """
    require_train_extra()
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    if max_length < 1:
        raise DataError(f"--max-length must be at least 1, got {max_length}")
    import jax.numpy as jnp
    import numpy as np

    from trainer_jax import enable_compile_cache
    from trainer_jax.data.batching import default_buckets
    from trainer_jax.data.encode import tokenize_items
    from trainer_jax.data.schemas import read_examples
    from trainer_jax.data.tokenizer import check_ids_fit, load_tokenizer
    from trainer_jax.evals import rewardbench
    from trainer_jax.evals.score_rows import write_jsonl_atomic
    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.hf_import import load_reward_model, read_model_dir

    if out is not None:
        check_writable(out)
    src = read_model_dir(model_dir)  # a bad model directory is reported before any data work
    if not src.is_classifier:
        raise ArtifactError(f"{model_dir} is a {src.architecture}: a base model without a trained reward head (it "
                            "would score with a random one); train a reward model on it with `basepick train`")
    w = np.asarray(_head_weights(src, weights, model_dir), np.float32)  # (L,)
    examples = read_examples(data, "score", schema=schema, split=split)
    named = [item.subset is not None for item in examples.items]
    if any(named) and not all(named):
        first = examples.items[named.index(False)]
        raise DataError(f"{first.where}: column 'subset' is missing while other rows name their RewardBench subset; "
                        "give every row one, or none")
    version = "v2" if examples.schema == "rewardbench2" else "v1" if all(named) else None
    if version is not None:
        rewardbench.preflight(examples.items, version, str(data))  # unknown subsets, duplicate ids: before any work
    tok = load_tokenizer(model_dir)
    encoded, truncated = tokenize_items(examples.items, tok, max_length)
    check_ids_fit({i for seqs in encoded for seq in seqs for i in seq}, src.config.vocab_size, model_dir)
    counts = {**examples.counts, "completions_truncated": truncated}
    if truncated:
        note(f"{truncated} completion(s) longer than --max-length {max_length} kept their last {max_length} tokens")

    enable_compile_cache()
    model = load_reward_model(model_dir, dtype=jnp.dtype(dtype))
    note(choose_attention(model.cfg, jnp.dtype(dtype)).describe())
    flat = [seq for seqs in encoded for seq in seqs]
    outputs = reward_sequences(model, flat, 2 * batch_size, default_buckets(max_length))  # (S, L)
    scores = outputs @ w  # (S,) one reward per completion
    if not np.all(np.isfinite(scores)):
        raise ArtifactError(f"{model_dir} produced non-finite rewards; check the model weights and dtype")
    records, gaps, k = [], [], 0
    for item in examples.items:
        nc, nr = len(item.chosen), len(item.rejected)
        chosen, rejected = scores[k : k + nc], scores[k + nc : k + nc + nr]
        gaps.append(float(chosen.min() - rejected.max()))  # worst chosen minus best rejected
        record = {key: value for key, value in (("id", item.id), ("subset", item.subset)) if value is not None}
        if examples.schema != "rewardbench2" and nc == nr == 1:
            record.update(chosen_score=float(chosen[0]), rejected_score=float(rejected[0]))
            if model.num_labels > 1:
                record.update(chosen_scores=outputs[k].tolist(), rejected_scores=outputs[k + 1].tolist())
        else:
            record.update(scores_chosen=chosen.tolist(), scores_rejected=rejected.tolist())
        records.append(record)
        k += nc + nr
    if out is not None:
        write_jsonl_atomic(out, records)
    rb = None
    if version is not None:
        rb = (rewardbench.score_v1 if version == "v1" else rewardbench.score_v2)(records, source=str(data))
    gaps = np.asarray(gaps)  # (N,)
    return ScoreReport(len(records), examples.schema, float(np.mean(gaps > 0)), float(np.mean(gaps)), counts,
                       None if out is None else str(out), rb, tuple(records))


def render_table(report: ScoreReport) -> str:
    """The summary as plain aligned text (the rows are JSON lines)."""
    lines = [f"prompts      {report.n_items} ({report.schema} rows)", f"accuracy     {100 * report.accuracy:.2f}%",
             f"mean margin  {report.mean_margin:.4f}"]
    rb = report.rewardbench
    if rb is not None:
        title = "RewardBench v1" if rb.version == "v1" else "RewardBench 2"
        lines.append(title + ("" if rb.complete else " (partial: some subsets missing)"))
        lines += [f"  {section:<19}{100 * value:.2f}" for section, value in rb.sections.items()]
        lines.append(f"  {'Score':<19}" + ("n/a" if rb.overall is None else f"{100 * rb.overall:.2f}"))
    return "\n".join(lines)
