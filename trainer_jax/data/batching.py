"""Length-bucketed, resumable numpy batches of tokenized examples.

Batches are right-padded; models pool at the last real token found from ``attention_mask``. The stream is
a pure function of (data, config, position), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from trainer_jax.data.encode import TokenizedData


@dataclass(frozen=True)
class BatchConfig:
    """How tokenized examples are grouped, padded and ordered."""

    batch_size: int = 8  # examples (pairs) per batch, B
    buckets: tuple[int, ...] = (256, 512, 1024, 1536, 2048)  # padded lengths T: a batch takes the smallest
    # bucket that holds its longest sequence, so a run compiles at most len(buckets) shapes
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
    margins: np.ndarray | None  # (B,) float32 Bradley-Terry margins of pairs (0 on filler rows); None for regression
    valid: np.ndarray  # (B,) bool, False on filler rows that complete a short last batch
    indices: np.ndarray  # (B,) int64 example index into TokenizedData, -1 on filler rows
    position: DataPosition  # the stream position after this batch (checkpoint this)


def epoch_plan(lengths: np.ndarray, config: BatchConfig, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch as arrays of example indices (deterministic from seed and epoch)."""
    n, bsz = len(lengths), config.batch_size
    if bsz < 1 or config.window_batches < 1 or not config.buckets or min(config.buckets) < 1:
        raise ValueError("batch_size, window_batches and buckets must be positive")
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
    t = bucket_length(longest, config.buckets)
    input_ids = np.full((sides * bsz, t), config.pad_id, dtype=np.int32)  # (2B, T) or (B, T)
    mask = np.zeros((sides * bsz, t), dtype=np.int32)  # (2B, T) or (B, T)
    for b, i in enumerate(idx):
        for side, seq in enumerate(data.sequences[i]):
            input_ids[side * bsz + b, : len(seq)] = seq
            mask[side * bsz + b, : len(seq)] = 1
    indices = np.full(bsz, -1, dtype=np.int64)  # (B,)
    indices[: len(idx)] = idx
    targets = margins = None
    if data.targets is not None:
        targets = np.zeros((bsz, data.targets.shape[1]), dtype=np.float32)  # (B, 5)
        targets[: len(idx)] = data.targets[idx]
    if data.margins is not None:
        margins = np.zeros(bsz, dtype=np.float32)  # (B,)
        margins[: len(idx)] = data.margins[idx]
    return Batch(input_ids, mask, targets, margins, indices >= 0, indices, position)


def default_buckets(max_length: int) -> tuple[int, ...]:
    """Padded lengths for sequences of at most max_length: 1/8, 1/4, 1/2, 3/4 and all of it, rounded up
    to multiples of 64 (2048 -> 256, 512, 1024, 1536, 2048): at most 5 compiled shapes, at most ~2x padding
    for the shortest batches and < 1.5x above a quarter of max_length."""
    parts = {max(64, -(-max_length * k // 8 // 64) * 64) for k in (1, 2, 4, 6)}
    return tuple(sorted(b for b in parts if b < max_length)) + (max_length,)


def bucket_length(longest: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket holding ``longest`` tokens; ValueError when none does."""
    for b in sorted(buckets):
        if longest <= b:
            return b
    raise ValueError(f"a sequence of {longest} tokens is longer than the largest bucket ({max(buckets)})")


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
