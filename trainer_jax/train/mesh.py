"""One device mesh with axes ("data", "fsdp") and the shardings the trainer uses.

* Parameters (and the Adam moments, which share their shapes) are FSDP-sharded: each array is split on its
  largest axis that the ``fsdp`` size divides, and replicated when none does (norm scales, tiny heads).
  They are replicated across ``data``.
* Batches are split on their leading (row) axis over ``data`` x ``fsdp`` together.

The same code runs at mesh size 1 (every sharding is then trivially a single device), so a laptop, one GPU
and a pod slice share one code path. Tested against 8 fake CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``).

Multi-host use (several processes, e.g. a TPU pod slice or GPU nodes): every process must call

    import jax
    jax.distributed.initialize()  # on TPU/SLURM the coordinator and process ids are auto-detected; else
    # jax.distributed.initialize(coordinator_address="host0:1234", num_processes=N, process_id=i)

before any other JAX call; ``basepick train ... --distributed`` does exactly that. Run the same command on
every host, with RUN_DIR on a filesystem all hosts share. ``make_mesh`` then spans ``jax.devices()`` (all
hosts' devices). Every process reads the same data files and builds the same batches from the same seed;
``shard_batch`` hands each process's rows to ``jax.make_array_from_process_local_data``. Orbax saves and
restores checkpoints from all processes together; process 0 alone writes the metrics log, config, manifests,
the exported model (parameters are replicated first so that it can read them whole) and the label row.
Keep ``fsdp`` within a host (fast interconnect) and put hosts on ``data`` (``--mesh-data NUM_HOSTS``).
Only the single-process paths (1 and 8 fake devices) are tested; multi-host runs are untested.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")  # rows of a batch are split over both axes


def make_mesh(data: int | None = None, fsdp: int | None = None, devices: Sequence | None = None) -> Mesh:
    """A (data, fsdp) mesh over ``devices`` (default: all). Unspecified sizes: FSDP over everything left."""
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if data is None and fsdp is None:
        data, fsdp = 1, n
    elif data is None:
        data = n // fsdp
    elif fsdp is None:
        fsdp = n // data
    if data < 1 or fsdp < 1 or data * fsdp != n:
        raise ValueError(f"mesh data={data} x fsdp={fsdp} does not cover the {n} devices")
    return Mesh(np.asarray(devices, dtype=object).reshape(data, fsdp), AXES)


def param_spec(shape: Sequence[int], fsdp_size: int) -> P:
    """FSDP partition spec: the largest axis divisible by fsdp_size goes on "fsdp"; else replicated."""
    if fsdp_size > 1:
        for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % fsdp_size == 0 and shape[axis] >= fsdp_size:
                spec = [None] * len(shape)
                spec[axis] = "fsdp"
                return P(*spec)
    return P()


def param_sharding(mesh: Mesh):
    """A function (NNX path, abstract array) -> NamedSharding, the form hf_import's ``sharding`` takes."""
    fsdp_size = mesh.shape["fsdp"]

    def shard(path: tuple, abstract) -> NamedSharding:
        return NamedSharding(mesh, param_spec(abstract.shape, fsdp_size))

    return shard


def tree_shardings(mesh: Mesh, tree):
    """The FSDP NamedSharding of every array leaf of a pytree (params or optimizer state)."""
    fsdp_size = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(x.shape, fsdp_size)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of every batch array split over data x fsdp; other axes whole."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def rows_per_step_multiple(mesh: Mesh) -> int:
    """Batch rows (pairs) must be a multiple of this so every device gets whole rows."""
    return mesh.shape["data"] * mesh.shape["fsdp"]


def shard_batch(mesh: Mesh, array: np.ndarray) -> jax.Array:
    """Place a host batch array (rows first) on the mesh, split by rows (multi-host aware)."""
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    # every process built the same global batch: hand over only the rows its devices hold
    n_proc, i = jax.process_count(), jax.process_index()
    rows = array.shape[0] // n_proc
    return jax.make_array_from_process_local_data(sharding, array[i * rows : (i + 1) * rows], array.shape)
