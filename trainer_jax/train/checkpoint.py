"""Orbax checkpoints of a training run, verified before they are loaded.

A run directory holds two orbax ``CheckpointManager`` trees:

* ``state/<step>/``: everything resume needs: parameters (fp32 master weights), optimizer state,
  the data-iterator position, the rng key and the run's bookkeeping (``meta``: step, best validation
  accuracy so far, ...). The newest two are kept.
* ``best/<step>/``: the parameters of the best validation accuracy so far (one kept); the model that
  gets exported.

Saving is synchronous. After orbax commits a step, ``manifests/<tree>-<step>.json`` records the size and
SHA-256 of every file in it (written atomically). Restoring first checks the step against its manifest:
a step without one (the process died while saving), a missing, truncated or altered file is reported as
an ArtifactError naming the step; it is never loaded silently. Restores go into an abstract target
(``jax.ShapeDtypeStruct`` with shardings), so arrays land directly with the mesh's shardings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from predictor.atomic import atomic_file
from predictor.data import sha256
from predictor.errors import ArtifactError


@dataclass(frozen=True)
class Restored:
    """A training state read back from a verified checkpoint."""

    step: int  # optimizer steps done
    tree: Any  # {"params", "opt_state", "rng"} with the abstract target's structure and shardings
    meta: dict[str, Any]  # JSON bookkeeping saved with the step


def abstract_like(tree: Any) -> Any:
    """Shape/dtype/sharding of every array leaf: the target orbax restores into."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _files(step_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(p for p in step_dir.rglob("*") if p.is_file()):
        out[str(path.relative_to(step_dir))] = {"size": path.stat().st_size, "sha256": sha256(path)}
    return out


def _write_json_atomic(path: Path, payload: Any) -> None:
    with atomic_file(path) as f:
        json.dump(payload, f, indent=1, sort_keys=True)


class RunCheckpoints:
    """The ``state`` and ``best`` checkpoint trees of one run directory."""

    def __init__(self, directory: str | os.PathLike):
        self.root = Path(directory).absolute()
        self._managers = {
            name: ocp.CheckpointManager(
                self.root / name,
                options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False),
            )
            for name, keep in (("state", 2), ("best", 1))
        }

    # ----------------------------------------------------------------------------------------- saving
    def _save(self, name: str, step: int, args: ocp.args.CheckpointArgs) -> None:
        manager = self._managers[name]
        if step in manager.all_steps():  # a resumed run passing a step saved before the interruption
            manager.delete(step)
        manager.save(step, args=args, force=True)
        manager.wait_until_finished()
        if jax.process_index() == 0:
            _write_json_atomic(self.root / "manifests" / f"{name}-{step}.json", _files(self.root / name / str(step)))
            kept = {f"{name}-{s}.json" for s in manager.all_steps()}
            for stale in (self.root / "manifests").glob(f"{name}-*.json"):
                if stale.name not in kept:
                    stale.unlink()

    def save_state(self, step: int, params: Any, opt_state: Any, rng: jax.Array, meta: dict[str, Any]) -> None:
        """Save everything resume needs at optimizer step ``step``."""
        tree = {"params": params, "opt_state": opt_state, "rng": jax.random.key_data(rng)}
        self._save("state", step, ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                     meta=ocp.args.JsonSave({**meta, "step": step})))

    def save_best(self, step: int, params: Any) -> None:
        """Save the parameters of a new best validation accuracy."""
        self._save("best", step, ocp.args.Composite(params=ocp.args.StandardSave(params)))

    def discard_after(self, step: int) -> None:
        """Delete checkpoints newer than ``step`` (written after the state a run resumes from)."""
        for name, manager in self._managers.items():
            for later in [s for s in manager.all_steps() if s > step]:
                manager.delete(later)
                (self.root / "manifests" / f"{name}-{later}.json").unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------- restoring
    def latest_state_step(self) -> int | None:
        return self._managers["state"].latest_step()

    def best_step(self) -> int | None:
        return self._managers["best"].latest_step()

    def verify(self, name: str, step: int) -> None:
        """ArtifactError unless ``name/step`` matches the manifest written when it was saved."""
        step_dir = self.root / name / str(step)
        manifest = self.root / "manifests" / f"{name}-{step}.json"
        hint = f"delete {step_dir} (and resume from an earlier step) or start the run afresh"
        if not manifest.is_file():
            raise ArtifactError(f"checkpoint {step_dir} is incomplete (no manifest: the save did not finish); {hint}")
        try:
            expected = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"checkpoint manifest {manifest} is unreadable ({exc}); {hint}") from None
        if not step_dir.is_dir():
            raise ArtifactError(f"checkpoint {step_dir} is missing; {hint}")
        actual = {str(p.relative_to(step_dir)): p for p in step_dir.rglob("*") if p.is_file()}
        for rel, info in expected.items():
            path = actual.get(rel)
            if path is None:
                raise ArtifactError(f"checkpoint {step_dir} is corrupt: {rel} is missing; {hint}")
            if path.stat().st_size != info["size"] or sha256(path) != info["sha256"]:
                raise ArtifactError(f"checkpoint {step_dir} is corrupt: {rel} does not match its checksum; {hint}")
        extra = sorted(set(actual) - set(expected))
        if extra:
            raise ArtifactError(f"checkpoint {step_dir} is corrupt: unexpected file {extra[0]}; {hint}")

    def restore_state(self, step: int, target: Any) -> Restored:
        """Verify, then restore step into ``target`` ({"params", "opt_state", "rng"} of live or abstract arrays)."""
        self.verify("state", step)
        abstract = abstract_like({**target, "rng": jax.random.key_data(target["rng"])})
        try:
            out = self._managers["state"].restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        except Exception as exc:  # orbax/tensorstore raise many types for unreadable or mismatched data
            raise ArtifactError(f"cannot restore checkpoint {self.root / 'state' / str(step)}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        tree = dict(out.state)
        tree["rng"] = jax.random.wrap_key_data(tree["rng"])
        return Restored(step, tree, dict(out.meta))

    def restore_best(self, target_params: Any) -> Any:
        """Verify, then restore the best parameters into the structure/shardings of ``target_params``."""
        step = self.best_step()
        if step is None:
            raise ArtifactError(f"{self.root / 'best'} holds no checkpoint")
        self.verify("best", step)
        try:
            out = self._managers["best"].restore(step, args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_like(target_params))))
        except Exception as exc:  # see restore_state
            raise ArtifactError(f"cannot restore checkpoint {self.root / 'best' / str(step)}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return out.params

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()
