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


def enable_compile_cache() -> None:
    """Turn on JAX's persistent compilation cache under basepick's cache directory (``.../jax``).

    A run (or the next run) that compiles a program it compiled before loads it instead. A cache
    directory the user set (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left alone.
    """
    import jax

    from predictor.data.shipped import cache_dir

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
