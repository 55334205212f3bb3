"""basepick's optional JAX/Flax/Optax reward-model trainer.

Installed with ``pip install 'basepick[train]'``. Nothing on the ``basepick rank`` path imports this
package; the CLI imports it lazily inside the commands that need it (score, train, probe).
"""

from __future__ import annotations

import importlib.util

from predictor.errors import MissingExtraError

_REQUIRED = ("jax", "flax", "optax", "transformers", "safetensors")


def require_train_extra() -> None:
    """Raise MissingExtraError naming the first missing dependency of the ``train`` extra."""
    for module in _REQUIRED:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("train", module)
