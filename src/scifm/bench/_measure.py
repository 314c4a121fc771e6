"""What every benchmark measures with: the machine, peak memory, and its argument checks.

No JAX import here: the data benchmark and its memory-measuring subprocesses import this
module without starting the JAX runtime.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np


def machine() -> dict:
    """What the numbers were measured on: platform, CPU model, CPU count, Python, NumPy."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "processor": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def time_process(
    cmd: list[str], cwd: str | os.PathLike, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Run ``cmd`` as a user would (a fresh process in ``cwd``, ``env`` added to this one's);
    return its wall seconds and its stdout + stderr.

    Raises:
        UserError: it failed (its exit status and the last lines it printed).
    """
    from scifm._checks import UserError

    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise UserError(f"{cmd[0]} {cmd[1]} failed (exit {done.returncode}): " + " | ".join(tail))
    return seconds, done.stdout + done.stderr


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux's ``VmHWM`` (the high-water mark of this process's own address space). Not
    ``ru_maxrss``: after fork + exec that also keeps the parent's resident size at the fork,
    so a small child of a large parent would report the parent's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def xla_memory_bytes(compiled: Any) -> int | None:
    """Bytes the compiled XLA executable holds while it runs, from its buffer assignment.

    ``argument + output + temp - alias`` of XLA's ``CompiledMemoryStats``
    (``compiled.memory_analysis()``): the arguments (weights, optimizer state, batch), the
    outputs, and the one scratch allocation for temporaries, whose size XLA's heap simulator
    already packs by buffer lifetime; an output aliased to a donated argument is counted in
    both ``argument`` and ``output``, so ``alias`` is taken off once. It is the step's
    footprint, not a measured high-water mark: generated code, host buffers and the scratch
    of library calls outside the buffer assignment (e.g. inside a fused dot on the CPU) are
    not in it. (``peak_memory_in_bytes``, where jaxlib reports it, leaves the arguments out on
    the CPU backend, and they are most of a training step's memory.)

    Args:
        compiled: a ``jax.stages.Compiled``, or Equinox's wrapper of one
            (``eqx.filter_jit(f).lower(...).compile()``).

    Returns:
        The bytes, or None where the backend gives no memory analysis.
    """
    try:
        m = getattr(compiled, "compiled", compiled).memory_analysis()
        total = (
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        )
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None
    return int(total)
