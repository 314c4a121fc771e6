"""`scifm bench data`: samples/s of dataset generation and peak memory against n."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scifm import data, pdes

_CHILD = """
import sys, time
from scifm import data, pdes
from scifm.bench._data import peak_rss_mib
system, n, resolution, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
data.generate(pdes.get_system(system), n, resolution, 0, out)
print(time.perf_counter() - start, peak_rss_mib())
"""


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


def _peak_memory(system: str, n: int, resolution: int, workdir: Path) -> tuple[float, float]:
    """Generate in a fresh process; returns (seconds, peak resident MiB of that process)."""
    out = workdir / f"mem-{system}-{n}.h5"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, system, str(n), str(resolution), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    out.unlink()
    seconds, mib = done.stdout.split()
    return float(seconds), float(mib)


def machine() -> dict:
    """What the numbers were measured on."""
    import os

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


def bench_data(
    resolution: int = 128,
    n: int = 4096,
    memory_n: tuple[int, ...] = (1024, 8192),
    systems: tuple[str, ...] = ("poisson", "advdiff", "helmholtz"),
    chunk_size: int = 256,
    report=print,
) -> dict:
    """Measure generation speed (end to end, into an HDF5 file) and peak memory per system.

    Speed: ``n`` samples written by :func:`scifm.data.generate` after a warm-up of one chunk.
    Memory: peak resident set size of a fresh process generating ``memory_n`` samples each, to
    show that it does not grow with ``n``.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in systems:
            system = pdes.get_system(name)
            data.generate(system, chunk_size, resolution, 1, workdir / "warm.h5", overwrite=True)
            start = time.perf_counter()
            data.generate(system, n, resolution, 0, workdir / "speed.h5", chunk_size=chunk_size)
            seconds = time.perf_counter() - start
            (workdir / "speed.h5").unlink()
            row = {
                "system": name,
                "resolution": resolution,
                "n": n,
                "seconds": seconds,
                "samples_per_s": n / seconds,
            }
            for m in memory_n:
                _, mib = _peak_memory(name, m, resolution, workdir)
                row[f"peak_rss_mib_n{m}"] = mib
            rows.append(row)
            report(row)
    return {"benchmark": "data", "machine": machine(), "chunk_size": chunk_size, "rows": rows}


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return path
