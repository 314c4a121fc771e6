"""k-points over the local devices: the same code on one CPU and on several GPUs.

Every per-k-point array (orbitals, Kohn-Sham matrices, the wave functions on the grid) has the
k axis first. :func:`kpoint_sharding` splits that axis over the largest number of local
devices that divides the k-point count, and the Hamiltonian's methods constrain their per-k
intermediates to it inside ``jit``; XLA's partitioner then runs each device's k-points there
and sums the density across devices (an all-reduce). With one device nothing changes.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def kpoint_sharding(count: int, devices=None) -> NamedSharding | None:
    """A sharding of a leading axis of ``count`` k-points, or None for one device."""
    devices = list(devices) if devices is not None else jax.local_devices()
    used = max(n for n in range(1, len(devices) + 1) if count % n == 0)
    if used == 1:
        return None
    return NamedSharding(Mesh(np.array(devices[:used]), ("k",)), PartitionSpec("k"))


def along_k(x, sharding: NamedSharding | None):
    """``x`` (k axis first) constrained to ``sharding`` inside jit; unchanged for None."""
    if sharding is None:
        return x
    return jax.lax.with_sharding_constraint(x, sharding)


def put_along_k(x, sharding: NamedSharding | None):
    """Place a concrete array (k axis first) on the devices of ``sharding``."""
    return x if sharding is None else jax.device_put(x, sharding)


def per_kpoint(fn, sharding: NamedSharding | None):
    """``fn`` (a batched LAPACK call: eigh, QR) over the leading k axis.

    When the k-points are split over several *CPU* devices, jaxlib's LAPACK kernels spread a
    batch over the thread pool that the devices' collectives also wait in, and the program
    deadlocks (jax 0.10.2: ``ParallelBatchMap`` in ``lapack_zheevd_ffi`` waiting forever
    beside an all-reduce; a batch of one does not). There each k-point is its own call; on
    one device, or GPUs, the batched call is kept.
    """
    if sharding is None or sharding.mesh.devices.flat[0].platform != "cpu":
        return fn
    return lambda *arrays: jax.lax.map(lambda a: fn(*a), arrays)
