"""Option types every basepick command uses (the predictor's in ``cli.py``, the trainer's in
``trainer_jax.commands``), so that one rule holds for every numeric option: a number that is not
finite, or outside the option's range, is refused at parse time with one line naming the option."""

from __future__ import annotations

import math

import click

from predictor.data.labels import ON_DUPLICATE

SEED_MAX = 2**32 - 1  # numpy's and LightGBM's seeds are unsigned 32-bit


class Range(click.FloatRange):
    """click.FloatRange for finite numbers: NaN compares false with both bounds and inf passes a range
    open above, so both would slip through a plain FloatRange."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number in the range {self._describe_range()}.", param, ctx)
        return number


SEED = click.IntRange(0, SEED_MAX)


def seed_option(help: str = "Seed of every random draw (0 to 2**32-1).") -> callable:
    return click.option("--seed", type=SEED, default=0, show_default=True, help=help)


def on_duplicate_option() -> callable:
    return click.option(
        "--on-duplicate", type=click.Choice(ON_DUPLICATE), default="error", show_default=True,
        help="A base labelled twice for one recipe (whatever its train_data or eval say): error, the mean of its "
             "rows, or the last row.")
