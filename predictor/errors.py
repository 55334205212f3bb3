"""One exception hierarchy for basepick.

Every error a user can cause is a ``BasepickError``; its message says what is wrong and what to do.
``cli.py`` prints it as a single ``Error: ...`` line on stderr and exits with code 2. ``GateFailed`` is
the one exception that exits with 1: the input was fine but a requested quality gate did not pass.
"""

from __future__ import annotations


class BasepickError(Exception):
    """Base of all user-facing errors. Exit code 2."""

    exit_code = 2


class DataError(BasepickError):
    """An input file or table is missing, unreadable or inconsistent."""


class ArtifactError(BasepickError):
    """A predictor artifact or checkpoint is missing, partial, corrupt or incompatible."""


class MissingExtraError(BasepickError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(
            f"this command needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'basepick[{extra}]'"
        )


class GateFailed(BasepickError):
    """A requested gate (check, evaluate --fail-under) did not pass. Exit code 1."""

    exit_code = 1
