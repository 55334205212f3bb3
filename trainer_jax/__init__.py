"""basepick's optional JAX/Flax/Optax reward-model trainer.

Installed with ``pip install 'basepick[train]'``. Nothing on the ``basepick rank`` path imports this
package; the CLI imports it lazily inside the commands that need it (score, train, probe).
"""

from __future__ import annotations

import importlib.util
import os

from predictor.errors import MissingExtraError

# jinja2 renders chat templates; transformers >= 5 no longer installs it (torch does, which hid the gap)
_REQUIRED = ("jax", "flax", "optax", "transformers", "safetensors", "jinja2")


def require_train_extra() -> None:
    """Raise MissingExtraError naming the first missing dependency of the ``train`` extra.

    Also silences transformers' import-time advice (its "PyTorch was not found" banner: basepick needs no
    torch), so that what reaches stderr is basepick's own notes and at most one ``Error:`` line.
    """
    for module in _REQUIRED:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("train", module)
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # read when transformers is imported


def enable_compile_cache() -> None:
    """Turn on JAX's persistent compilation cache under basepick's cache directory (``.../jax``).

    A run (or the next run) that compiles a program it compiled before loads it instead. A cache
    directory the user set (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left alone. Call it
    after ``jax.distributed.initialize``.

    Several processes on CPU (gloo collectives) compile every program instead: there, processes that
    loaded their programs from the cache crossed collectives ("collective mismatch", then an abort) in
    about a third of the resumed runs of ``tests/trainer/test_multihost.py``, whichever process layout
    had written the cache; with the cache off, none did.
    """
    import jax

    from predictor.data.shipped import cache_dir

    if jax.process_count() > 1 and jax.default_backend() == "cpu":
        jax.config.update("jax_enable_compilation_cache", False)
    elif not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
