"""Chunked, atomic, resumable dataset generation."""

from __future__ import annotations

import builtins
import collections
import datetime
import itertools
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from scifm import __version__
from scifm._checks import OutputExists, check_count
from scifm.data._schema import FORMAT, FORMAT_VERSION, OUTPUT_NAMES, PARTIAL_SUFFIX
from scifm.pdes import COEFFICIENT_NAMES, AbstractPDESystem, check_resolution


def _identity(system: AbstractPDESystem, n: int, resolution: int, seed: int) -> str:
    """What must match for a partial file to be resumed."""
    return json.dumps(
        {
            "config": system.config(),
            "n": n,
            "resolution": resolution,
            "seed": seed,
            "format_version": FORMAT_VERSION,
        },
        sort_keys=True,
    )


def _create(
    path: Path, system: AbstractPDESystem, n: int, resolution: int, seed: int, identity: str
):
    f = h5py.File(path, "w")
    grid = (resolution, resolution)  # contiguous datasets: fast I/O
    inputs = f.create_dataset("inputs", shape=(n, len(system.input_names), *grid), dtype="f4")
    inputs.attrs["names"] = list(system.input_names)
    outputs = f.create_dataset("outputs", shape=(n, len(OUTPUT_NAMES), *grid), dtype="f4")
    outputs.attrs["names"] = list(OUTPUT_NAMES)
    coefficients = f.create_dataset("coefficients", shape=(n, len(COEFFICIENT_NAMES)), dtype="f4")
    coefficients.attrs["names"] = list(COEFFICIENT_NAMES)
    parameters = f.create_dataset("parameters", shape=(n, len(system.parameter_names)), dtype="f4")
    parameters.attrs["names"] = list(system.parameter_names)
    f.attrs.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        system=system.name,
        description=system.description,
        equation=system.equation,
        system_config=json.dumps(system.config()),
        ranges=json.dumps(system.ranges()),
        resolution=resolution,
        seed=seed,
        n=n,
        scifm_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        identity=identity,
        n_written=0,
        complete=False,
    )
    return f


def _open_partial(path, system, n, resolution, seed):
    """Open ``path`` to continue a matching partial generation, else start it afresh."""
    identity = _identity(system, n, resolution, seed)
    if path.exists():
        try:
            f = h5py.File(path, "r+")
            if f.attrs.get("identity") == identity:
                return f
            f.close()
        except OSError:
            pass  # unreadable (killed mid-write): start again
    return _create(path, system, n, resolution, seed, identity)


def default_workers() -> int:
    """Threads that solve chunks: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate(
    system: AbstractPDESystem,
    n: int,
    resolution: int,
    seed: int,
    out: str | os.PathLike,
    *,
    chunk_size: int = 256,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate ``n`` solved samples of ``system`` into the HDF5 file ``out``.

    Memory is bounded by ``workers + 1`` chunks of ``chunk_size`` samples whatever ``n``. The
    file is written as ``out.partial`` and renamed to ``out`` only when complete; a killed
    generation, rerun with the same arguments, resumes from the last finished chunk. Sample ``i``
    depends only on ``(system, seed, i)``, so files depend neither on ``chunk_size`` nor on
    ``workers``: chunks are solved ahead on ``workers`` threads (NumPy and the FFTs release the
    GIL) while this thread writes the finished ones in order.

    Args:
        system: the PDE system and its parameter ranges, e.g. ``Poisson(eig_range=(5, 10))``.
        n: number of samples (>= 1).
        resolution: grid points per side (even, >= 16).
        seed: random seed (>= 0).
        out: output path; refused if it exists unless ``overwrite``.
        chunk_size: samples solved and written at a time.
        workers: threads solving chunks (>= 1); default :func:`default_workers`.
        progress: called with the number of samples finished after each chunk.

    Returns:
        The path of the finished file.

    Raises:
        ValueError: bad ``n``, ``resolution``, ``seed``, ``chunk_size`` or ``workers``.
        FileExistsError: ``out`` exists and ``overwrite`` is false.
        FileNotFoundError, PermissionError: the output directory is missing or not writable.
    """
    check_count("n", n)
    check_resolution(resolution)
    check_count("seed", seed, minimum=0)
    check_count("chunk_size", chunk_size)
    workers = default_workers() if workers is None else workers
    check_count("workers", workers)
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExists(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output directory {out.parent} does not exist")
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    try:
        with builtins.open(partial, "ab"):  # can we write there at all?
            pass
    except OSError as e:
        raise PermissionError(f"cannot write {partial}: {e.strerror or e}") from None

    def solve(lo: int):
        hi = min(lo + chunk_size, n)
        return lo, hi, system.sample(np.arange(lo, hi), seed, resolution, dtype=np.float32)

    with (
        _open_partial(partial, system, n, resolution, seed) as f,
        ThreadPoolExecutor(workers, thread_name_prefix="scifm-generate") as pool,
    ):
        start = int(f.attrs["n_written"])
        if progress is not None and start:
            progress(start)
        chunks = iter(range(start, n, chunk_size))
        ahead = collections.deque(
            pool.submit(solve, lo) for lo in itertools.islice(chunks, workers)
        )
        try:
            while ahead:
                lo, hi, s = ahead.popleft().result()
                for lo_next in itertools.islice(chunks, 1):  # keep `workers` solving while we write
                    ahead.append(pool.submit(solve, lo_next))
                f["inputs"][lo:hi] = s.inputs
                f["outputs"][lo:hi] = s.outputs
                f["coefficients"][lo:hi] = s.coefficients.astype(np.float32)
                f["parameters"][lo:hi] = s.parameters.astype(np.float32)
                f.attrs["n_written"] = hi
                f.flush()
                if progress is not None:
                    progress(hi - lo)
        finally:
            for pending in ahead:  # an error or interrupt: do not solve what will not be written
                pending.cancel()
        f.attrs["complete"] = True
    os.replace(partial, out)
    return out
