"""How parameters are laid out over an ("fsdp") mesh axis: FSDP's rule, shared by the trainer's mesh
and the decoder (which casts each layer's matrices to the compute dtype while they are still sharded).
"""

from __future__ import annotations

from collections.abc import Sequence

from jax.sharding import PartitionSpec as P


def param_spec(shape: Sequence[int], fsdp_size: int, stacked: bool = False) -> P:
    """FSDP partition spec: the largest axis divisible by fsdp_size goes on "fsdp"; else replicated.

    ``stacked``: the leading axis holds layers and is never split.
    """
    if fsdp_size > 1:
        for axis in sorted(range(int(stacked), len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % fsdp_size == 0 and shape[axis] >= fsdp_size:
                spec = [None] * len(shape)
                spec[axis] = "fsdp"
                return P(*spec)
    return P()


LAYERS = "layers"  # the NNX attribute holding the stacked decoder layers


def is_stacked(path) -> bool:
    """Whether a path runs through the stacked decoder layers: an NNX path (plain names) or a pytree key
    path (``DictKey``/``GetAttrKey``/``SequenceKey`` entries)."""
    names = (getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
    return LAYERS in names


