"""Fixtures of the trainer's tests."""

from __future__ import annotations

import pytest

from tests import real_weights


@pytest.fixture
def real_model(request):
    """``real_model("gemma-3-270m")`` → the converted Hugging Face directory; skips when it is absent.

    The folders are made by ``python -m tests.real_weights`` (``.ci/run`` does it); see that module.
    """

    def get(name: str):
        path = real_weights.model_dir(name)
        if path is None:
            pytest.skip(f"real weights {name!r} not converted (run: python -m tests.real_weights {name})")
        return path

    return get
