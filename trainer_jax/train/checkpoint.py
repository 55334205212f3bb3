"""Orbax checkpoints of a training run: one resume state, one best-validation parameter set.

A run directory holds two orbax ``CheckpointManager`` trees:

* ``state/<step>/``: everything resume needs: parameters (fp32 master weights), the optimizer state
  without its gradient accumulator (saves happen at optimizer-step boundaries, where the accumulator is
  all zeros, so it is rebuilt instead of stored: 12 bytes per parameter instead of 16) and the run's
  bookkeeping as JSON (``meta``: step, data-iterator position, rng key data, best validation accuracy
  so far, ...).
  Only the newest is kept.
* ``best/<step>/``: the parameters alone (4 bytes per parameter) of the best validation accuracy so far:
  the model that gets exported. One kept.

Saves are asynchronous: orbax copies the arrays off the devices, then writes in a background thread
while training goes on; the next save, ``wait`` and ``close`` wait for it. Orbax commits a step
atomically (written under a temporary name, renamed when complete), so a step that a crash interrupted
is never listed and a resume starts from the last complete one. An unreadable step (files deleted or
truncated afterwards) is an ArtifactError naming it. Restores go into an abstract target
(``jax.ShapeDtypeStruct`` with shardings): each process reads only the shards its devices hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from predictor.errors import ArtifactError


@dataclass(frozen=True)
class Restored:
    """A training state read back from a checkpoint."""

    step: int  # optimizer steps done
    tree: Any  # {"params", "opt_state", "rng"} with the target's structure and shardings
    meta: dict[str, Any]  # JSON bookkeeping saved with the step


def abstract_like(tree: Any) -> Any:
    """Shape/dtype/sharding of every array leaf: the target orbax restores into."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _without_accumulator(opt_state: Any) -> Any:
    """optax.MultiSteps state with ``acc_grads`` dropped (None); other states unchanged."""
    return opt_state._replace(acc_grads=None) if hasattr(opt_state, "acc_grads") else opt_state


def _with_zero_accumulator(restored: Any, like: Any) -> Any:
    if not hasattr(like, "acc_grads"):
        return restored
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype, device=x.sharding), like.acc_grads)
    return restored._replace(acc_grads=zeros)


def _unreadable(path: Path, exc: Exception) -> ArtifactError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ArtifactError(f"cannot restore checkpoint {path} ({reason}); delete it to resume from an earlier "
                         "step, or start the run afresh")


class RunCheckpoints:
    """The ``state`` and ``best`` checkpoint trees of one run directory."""

    def __init__(self, directory: str | os.PathLike):
        self.root = Path(directory).absolute()
        self._managers = {
            name: ocp.CheckpointManager(
                self.root / name,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=1, enable_async_checkpointing=True,
                    # both trees may save the same step at once: their multi-host barriers need distinct names
                    multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)),
            )
            for name in ("state", "best")
        }

    # ----------------------------------------------------------------------------------------- saving
    def _save(self, name: str, step: int, args: ocp.args.CheckpointArgs) -> None:
        manager = self._managers[name]
        manager.wait_until_finished()
        if step in manager.all_steps():  # a resumed run passing a step saved before the interruption
            manager.delete(step)
        manager.save(step, args=args, force=True)

    def save_state(self, step: int, params: Any, opt_state: Any, rng: jax.Array, meta: dict[str, Any]) -> None:
        """Start saving everything resume needs at optimizer step ``step`` (returns before it is on disk)."""
        tree = {"params": params, "opt_state": _without_accumulator(opt_state)}
        rng_data = [int(x) for x in jax.device_get(jax.random.key_data(rng)).ravel()]  # host value: multi-host safe
        self._save("state", step, ocp.args.Composite(
            state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave({**meta, "step": step, "rng": rng_data})))

    def save_best(self, step: int, params: Any) -> None:
        """Start saving the parameters of a new best validation accuracy."""
        self._save("best", step, ocp.args.Composite(params=ocp.args.StandardSave(params)))

    def wait(self) -> None:
        """Block until every save started so far is committed."""
        for manager in self._managers.values():
            manager.wait_until_finished()

    def discard_after(self, step: int) -> None:
        """Delete checkpoints newer than ``step`` (written after the state a run resumes from)."""
        self.wait()
        for manager in self._managers.values():
            for later in [s for s in manager.all_steps() if s > step]:
                manager.delete(later)

    # ---------------------------------------------------------------------------------------- restoring
    def latest_state_step(self) -> int | None:
        return self._managers["state"].latest_step()

    def best_step(self) -> int | None:
        return self._managers["best"].latest_step()

    def restore_state(self, step: int, target: Any) -> Restored:
        """Restore step into ``target`` ({"params", "opt_state", "rng"} of live or abstract arrays)."""
        like = {"params": target["params"], "opt_state": _without_accumulator(target["opt_state"])}
        try:
            out = self._managers["state"].restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_like(like)), meta=ocp.args.JsonRestore()))
        except Exception as exc:  # orbax/tensorstore raise many types for unreadable or mismatched data
            raise _unreadable(self.root / "state" / str(step), exc) from None
        meta = dict(out.meta)
        tree = {"params": out.state["params"],
                "opt_state": _with_zero_accumulator(out.state["opt_state"], target["opt_state"]),
                "rng": jax.random.wrap_key_data(jnp.asarray(meta.pop("rng"), jnp.uint32))}
        return Restored(step, tree, meta)

    def restore_best(self, target_params: Any) -> Any:
        """The best parameters, in the structure and shardings of ``target_params``."""
        self.wait()
        step = self.best_step()
        if step is None:
            raise ArtifactError(f"{self.root / 'best'} holds no checkpoint")
        try:
            out = self._managers["best"].restore(step, args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_like(target_params))))
        except Exception as exc:  # see restore_state
            raise _unreadable(self.root / "best" / str(step), exc) from None
        return out.params

    def close(self) -> None:
        for manager in self._managers.values():
            manager.wait_until_finished()
            manager.close()
