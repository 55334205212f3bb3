"""Training configuration and the seed study's recipes (arXiv 2505.10775; DESIGN.md section 8.10).

numpy only (no jax): the CLI builds a TrainConfig and validates it before any heavy import.

* Bradley-Terry: 1 epoch, global batch 64 (gradient accumulation), AdamW, 20 warm-up steps then a
  constant learning rate, evaluation every 20 steps keeping the best validation accuracy; LR grid
  {5..9}e-7 U {1..5}e-6.
* Regression: the same loop, 2 epochs, MSE on HelpSteer2's five attributes; LR grid {1,3,5,7,9}e-{6,7}.
  The five outputs are scalarised by a grid search of the merge vector on a preference validation set:
  weights in 0.05 steps, helpfulness/correctness/coherence/complexity >= 0, verbosity <= 0, |w|_1 = 1
  (the scale of the vector does not change which completion wins, so it is fixed).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from predictor.errors import DataError

RECIPES = ("bradley_terry", "regression")
LR_GRIDS: dict[str, tuple[float, ...]] = {
    "bradley_terry": tuple(k * 1e-7 for k in range(5, 10)) + tuple(k * 1e-6 for k in range(1, 6)),
    "regression": tuple(k * 10.0**e for e in (-7, -6) for k in (1, 3, 5, 7, 9)),
}
DEFAULT_LR = {"bradley_terry": 2e-6, "regression": 5e-6}  # when neither --lr nor --lr-sweep is given
DEFAULT_EPOCHS = {"bradley_terry": 1, "regression": 2}
NUM_LABELS = {"bradley_terry": 1, "regression": 5}
DTYPES = ("bfloat16", "float32")
REMAT_POLICIES = ("full", "dots", "none")  # trainer_jax.models.decoder.REMAT_POLICIES, without importing jax


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result (written to RUN_DIR/config.json)."""

    recipe: str  # "bradley_terry" or "regression"
    lr: float  # peak (= constant after warm-up) AdamW learning rate
    epochs: int  # passes over the training data
    global_batch: int = 64  # pairs (BT) or rows (regression) per optimizer step
    micro_batch: int = 8  # per forward/backward pass; global_batch / micro_batch passes are accumulated
    warmup_steps: int = 20  # linear warm-up from 0 over this many optimizer steps, then constant
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    grad_clip: float | None = 1.0  # clip the global gradient norm to this (None: no clipping)
    center_coef: float = 0.0  # BT centering coefficient on mean((rc + rr)^2); 0 = off (0.01 is usual)
    eval_every: int = 20  # optimizer steps between validations (best checkpoint kept) and after the last step
    save_every: int = 100  # optimizer steps between resume states (also saved on halt and SIGTERM/SIGINT)
    max_length: int = 2048  # tokens per sequence; longer examples are filtered or left-truncated
    truncate_left: bool = False  # True: keep the last max_length tokens; False: drop over-length examples
    buckets: tuple[int, ...] | None = None  # padded batch lengths (compiled shapes); None: default_buckets
    dtype: str = "bfloat16"  # compute dtype; master weights and optimizer state stay float32
    remat: str = "full"  # "full": recompute each layer in the backward pass; "dots": keep matmul outputs; "none"
    seed: int = 0  # data order (numpy) and score-head init (jax.random.key(seed))
    max_steps: int | None = None  # stop training after this many optimizer steps (None: all epochs)
    halt_after: int | None = None  # preemption drill: checkpoint and stop unfinished after this many steps
    mesh_data: int = 1  # size of the "data" mesh axis; "fsdp" takes the remaining devices
    schema: str | None = None  # row schema of the training data (None: recognised from its columns)
    eval_schema: str | None = None  # same for the validation data
    split: str | None = "train"  # HelpSteer2-Preference rows of the training data: this split only (None: all)
    eval_split: str | None = "val"  # and of the validation data
    strength_margin: bool = False  # HelpSteer2-Preference: |preference_strength| as the Bradley-Terry margin
    attribute_head: bool = False  # regression: export the 5-attribute head (default: one merged reward)

    @property
    def accum_steps(self) -> int:
        """Micro batches accumulated into one optimizer step."""
        return self.global_batch // self.micro_batch

    @property
    def length_buckets(self) -> tuple[int, ...]:
        """The padded lengths batches take (``buckets`` or the default for ``max_length``)."""
        from trainer_jax.data.batching import default_buckets

        return tuple(sorted(self.buckets)) if self.buckets else default_buckets(self.max_length)

    @property
    def num_labels(self) -> int:
        return NUM_LABELS[self.recipe]

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists), as RUN_DIR/config.json records them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def make_config(recipe: str, *, lr: float | None = None, epochs: int | None = None, **fields) -> TrainConfig:
    """The recipe's preset with overrides; DataError on an unknown recipe or inconsistent values."""
    if recipe not in RECIPES:
        raise DataError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    config = TrainConfig(recipe=recipe, lr=DEFAULT_LR[recipe] if lr is None else lr,
                         epochs=DEFAULT_EPOCHS[recipe] if epochs is None else epochs, **fields)
    check_config(config)
    return config


def check_config(c: TrainConfig) -> None:
    """DataError naming the first inconsistent field."""
    if c.recipe not in RECIPES:
        raise DataError(f"unknown recipe {c.recipe!r}; choose one of {', '.join(RECIPES)}")
    positive = ("epochs", "global_batch", "micro_batch", "eval_every", "save_every", "max_length", "mesh_data")
    for name in positive:
        if getattr(c, name) < 1:
            raise DataError(f"{name.replace('_', '-')} must be at least 1, got {getattr(c, name)}")
    if not c.lr > 0:
        raise DataError(f"learning rate must be positive, got {c.lr}")
    if c.global_batch % c.micro_batch:
        raise DataError(f"batch size {c.global_batch} is not a multiple of the micro batch {c.micro_batch}")
    if c.warmup_steps < 0 or c.weight_decay < 0 or c.center_coef < 0:
        raise DataError("warm-up steps, weight decay and centering coefficient must be >= 0")
    for name in ("max_steps", "halt_after"):
        if getattr(c, name) is not None and getattr(c, name) < 1:
            raise DataError(f"{name.replace('_', '-')} must be at least 1")
    if c.dtype not in DTYPES:
        raise DataError(f"dtype must be one of {', '.join(DTYPES)}, got {c.dtype!r}")
    if c.remat not in REMAT_POLICIES:
        raise DataError(f"remat must be one of {', '.join(REMAT_POLICIES)}, got {c.remat!r}")
    if c.buckets is not None:
        if not c.buckets or min(c.buckets) < 1:
            raise DataError("buckets must be positive token counts, e.g. 512,1024,2048")
        if max(c.buckets) < c.max_length:
            raise DataError(f"the largest bucket ({max(c.buckets)}) is shorter than --max-length {c.max_length}; "
                            "add a bucket of at least that length")


def lr_grid(recipe: str) -> tuple[float, ...]:
    return LR_GRIDS[recipe]


# ------------------------------------------------------------------------------- regression merging
def merge_grid(step: float = 0.05) -> np.ndarray:
    """(M, 5) merge vectors: 0.05 steps, |w|_1 = 1, first four >= 0, verbosity <= 0 (10,626 at 0.05)."""
    n = round(1 / step)
    rows = [(a, b, c, d, -(n - a - b - c - d))
            for a, b, c, d in itertools.product(range(n + 1), repeat=4) if a + b + c + d <= n]
    return np.asarray(rows, dtype=np.float64) / n


def best_merge(chosen: np.ndarray, rejected: np.ndarray, step: float = 0.05) -> tuple[np.ndarray, float]:
    """chosen, rejected (N, 5) attribute predictions -> (best weights (5,), pairwise accuracy 0-1).

    Accuracy counts chosen > rejected strictly; ties between weight vectors go to the first in grid order.
    """
    grid = merge_grid(step)  # (M, 5)
    diff = (np.asarray(chosen, np.float64) - np.asarray(rejected, np.float64)) @ grid.T  # (N, M)
    acc = (diff > 0).mean(axis=0)  # (M,)
    best = int(np.argmax(acc))
    return grid[best].astype(np.float32), float(acc[best])
