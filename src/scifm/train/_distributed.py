"""Training across processes and hosts with JAX's own distributed runtime.

One process per host (or per GPU) runs the same program; :func:`initialize` joins them into
one runtime, after which ``jax.devices()`` lists every device of every process and
:func:`scifm.train.data_parallel` splits each batch over all of them. Every process reads the
same data files and draws the same batches (the shuffling is seeded); each contributes the
rows of the batch its own devices hold, and the gradient is reduced over the global mesh, so
the run computes what one process over all the devices would (up to the order of the
floating-point sums). Only process 0 writes the run directory (checkpoints, metrics, the
result); every process reads the saved state from it when a run resumes, so the directory must
be on a file system they share (as on a SLURM cluster). On the CPU the collectives go through
Gloo, over TCP: two processes on one machine form a two-device mesh over loopback.

Under SLURM (``srun``, one task per host or per GPU) nothing needs to be passed: JAX reads the
coordinator, process count and index from SLURM's environment.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from scifm._checks import UserError, check_count


def slurm_tasks() -> int:
    """How many tasks this process's SLURM job step has: ``srun`` sets
    ``SLURM_STEP_NUM_TASKS``; a batch script run without ``srun`` is one process (1)."""
    try:
        return max(1, int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")))
    except ValueError:
        return 1


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join this process to a multi-process JAX runtime; returns whether it did.

    With ``coordinator`` ("host:port" of process 0), ``num_processes`` and ``process_id`` the
    processes meet there; with none of them, a SLURM job step of several tasks is detected
    from its environment; otherwise (one process) nothing is done. Call it before any other
    JAX computation.

    Raises:
        UserError: only some of the three arguments given, or values out of range.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise UserError(
            "give all of --coordinator HOST:PORT, --num-processes N and --process-id I "
            "(or none of them: under SLURM they are read from srun's environment)"
        )
    if all(given):
        check_count("num_processes", num_processes)
        check_count("process_id", process_id, minimum=0)
        if process_id >= num_processes:
            raise UserError(f"process_id must be < num_processes {num_processes}, got {process_id}")
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
        if num_processes == 1:
            return False
        kwargs = dict(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    elif slurm_tasks() > 1:
        kwargs = {}  # JAX's SLURM cluster detection
    else:
        return False
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices' collectives
    jax.distributed.initialize(**kwargs)
    return True


def is_writer() -> bool:
    """Whether this process writes the run directory (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process has reached ``barrier(name)`` (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def put(tree, sharding):
    """Place the arrays of ``tree`` (the same values on every process) with ``sharding``.

    With one process this is ``jax.device_put``; across processes each process gives the
    slices its own devices hold.
    """

    def one(x):
        if not isinstance(x, np.ndarray | jax.Array):
            return x
        if sharding.is_fully_addressable:
            return jax.device_put(x, sharding)
        host = np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def local(tree):
    """A copy of ``tree`` whose replicated global arrays are this process's own (for
    evaluation and saving, which every process does on its own)."""

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x.addressable_data(0)
        return x

    return jax.tree.map(one, tree)


class Follower:
    """The run directory as processes other than 0 see it during training: they write
    nothing (process 0 writes the same metrics, states, model and result)."""

    def log(self, row: dict) -> None:
        pass

    def save_state(self, tree, counters: dict, *, step: int) -> None:
        pass

    def save_model(self, model, description: dict) -> None:
        pass

    def write_result(self, result: dict) -> dict:
        return result
