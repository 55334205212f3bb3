"""One device mesh with axes ("data", "fsdp") and the shardings the trainer uses.

* Parameters (and the Adam moments, which share their shapes) are FSDP-sharded: each array is split on its
  largest axis that the ``fsdp`` size divides, and replicated when none does (norm scales, tiny heads).
  The stacked decoder layers' leading layer axis is never split (the layer scan walks it). Parameters
  are replicated across ``data``.
* Batches are split on their leading (row) axis over ``data`` x ``fsdp`` together, and the decoder keeps
  its activations split that way at every layer boundary (``Execution.mesh``), so the only collectives
  in a layer are FSDP's: all-gathers of (bf16) weights and reduce-scatters of their gradients.

The same code runs at mesh size 1 (every sharding is then trivially a single device), so a laptop, one GPU
and a pod slice share one code path. Tested against 8 fake CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and 2 processes x 4 fake devices.

Multi-host use (several processes, e.g. GPU nodes or a TPU pod slice): ``basepick train ... --distributed``
calls ``initialize_distributed`` before any other JAX call, on every host with the same command and
RUN_DIR on a filesystem all hosts share. ``make_mesh`` then spans ``jax.devices()`` (all hosts' devices).
Every process reads the same data files and builds the same batches from the same seed; ``shard_batch``
places only the rows its own devices hold, and model import reads only their weight shards. Orbax saves
and restores checkpoints from all processes together; process 0 alone writes the metrics log, config,
the exported model and the label row, while the others wait at a barrier. Keep ``fsdp`` within a host
(fast interconnect) and put hosts on ``data`` (``--mesh-data NUM_HOSTS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from trainer_jax.models.sharding import is_stacked, param_spec

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


def param_sharding(mesh: Mesh):
    """A function (NNX path, abstract array) -> NamedSharding, the form hf_import's ``sharding`` takes."""
    fsdp_size = mesh.shape["fsdp"]

    def shard(path: tuple, abstract) -> NamedSharding:
        return NamedSharding(mesh, param_spec(abstract.shape, fsdp_size, stacked=is_stacked(path)))

    return shard


def tree_shardings(mesh: Mesh, tree):
    """The FSDP NamedSharding of every array leaf of a pytree (params or optimizer state)."""
    fsdp_size = mesh.shape["fsdp"]
    return jax.tree_util.tree_map_with_path(
        lambda kp, x: NamedSharding(mesh, param_spec(x.shape, fsdp_size, stacked=is_stacked(kp))), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of every batch array split over data x fsdp; other axes whole."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def rows_per_step_multiple(mesh: Mesh) -> int:
    """Batch rows (pairs) must be a multiple of this so every device gets whole rows."""
    return mesh.shape["data"] * mesh.shape["fsdp"]


def shard_batch(mesh: Mesh, array: np.ndarray) -> jax.Array:
    """Place a host batch array (rows first) on the mesh, split by rows.

    Every process holds the same global batch; each puts only the rows its own devices hold.
    """
    return jax.make_array_from_callback(array.shape, batch_sharding(mesh), lambda index: array[index])


def _rendezvous(coordinator: str, num_processes: int, process_id: int, timeout_s: float) -> None:
    """Meet every process at the coordinator's port before JAX does, with a bounded wait.

    JAX's own client aborts the process (no Python exception) when the coordinator never answers or a
    process never joins; this meeting turns both into a one-line DataError. Process 0 listens on the
    coordinator port until the N - 1 others have said hello, tells them to go and releases the port for
    JAX's coordination service; the others retry connecting until the deadline.
    """
    import socket
    import time

    from predictor.errors import DataError

    host, _, port_text = coordinator.rpartition(":")
    if not host or not port_text.isdigit():
        raise DataError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    port, deadline = int(port_text), time.monotonic() + timeout_s
    left = lambda: max(deadline - time.monotonic(), 0.0)  # noqa: E731
    if process_id == 0:
        try:
            server = socket.create_server(("", port))
        except OSError as exc:
            raise DataError(f"process 0 cannot listen on port {port} ({exc.strerror}); choose a free port") from None
        peers = []
        with server:
            while len(peers) < num_processes - 1:
                server.settimeout(left() or 0.001)
                try:
                    conn, _ = server.accept()
                    conn.settimeout(left() or 0.001)
                    conn.recv(32)  # the peer's hello
                except OSError:
                    if not left():
                        raise DataError(f"only {len(peers) + 1} of {num_processes} processes joined at {coordinator} "
                                        f"within {timeout_s:g} s; start every process with the same --coordinator "
                                        "and --num-processes") from None
                    continue
                peers.append(conn)
            for conn in peers:
                with conn:
                    conn.sendall(b"go")
                    conn.recv(1)  # wait for the peer to hang up first: the port is left free for JAX
        return
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, left() or 0.001)) as conn:
                conn.sendall(f"hello {process_id}".encode())
                conn.settimeout(left() or 0.001)
                if conn.recv(2) == b"go":
                    return
        except OSError:
            pass
        if not left():
            raise DataError(f"cannot reach the coordinator at {coordinator} within {timeout_s:g} s; check the address, "
                            "and that process 0 runs with the same --num-processes")
        time.sleep(0.2)


def _native_stdout_to_stderr() -> None:
    """Keep stdout for results: collective libraries (gloo) print progress on file descriptor 1, so that
    descriptor is pointed at stderr and Python's ``sys.stdout`` moves to a copy of the original."""
    import os
    import sys

    sys.stdout.flush()
    original = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(original, "w", buffering=1, encoding=sys.stdout.encoding, errors=sys.stdout.errors)


def initialize_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None,
                           *, timeout_s: int = 300) -> None:
    """Join a multi-process run (``jax.distributed.initialize``) before any other JAX call.

    Without ``coordinator`` (and the counts), JAX detects them on SLURM and TPU. With them, every process
    first meets at the coordinator (``_rendezvous``), waiting at most ``timeout_s``: an unreachable
    coordinator or a missing process is a DataError, not a hang or an abort. On CPU the processes talk
    through gloo collectives.
    """
    from predictor.errors import DataError

    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise DataError("--coordinator, --num-processes and --process-id go together (or none, on SLURM/TPU)")
    if process_id is not None and process_id >= num_processes:
        raise DataError(f"--process-id {process_id} must be below --num-processes {num_processes}")
    if coordinator is not None:
        _rendezvous(coordinator, num_processes, process_id, timeout_s)
    _native_stdout_to_stderr()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout_s)
    except Exception as exc:  # ValueError (nothing to detect), RuntimeError (a JAX-side failure)
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"cannot join the distributed run ({reason}); pass --coordinator HOST:PORT, "
                        "--num-processes and --process-id outside SLURM/TPU") from None
