"""`scifm bench data`: samples/s of dataset generation (in process and whole process), peak memory."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scifm import data, pdes

from .._checks import check_count, check_counts, check_nonempty
from . import _report as fmt
from ._measure import machine

_CHILD = """
import sys, time
from scifm import data, pdes
from scifm.bench import peak_rss_mib
system, n, resolution, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
data.generate(pdes.get_system(system), n, resolution, 0, out)
print(time.perf_counter() - start, peak_rss_mib())
"""


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


def _whole_process(system: str, n: int, resolution: int, workdir: Path) -> float:
    """Wall seconds of a fresh ``scifm generate`` process (start-up and writing included)."""
    out = workdir / f"process-{system}.h5"
    command = [sys.executable, "-m", "scifm.cli", "generate", system, "--n", str(n)]
    start = time.perf_counter()
    subprocess.run(
        [*command, "--resolution", str(resolution), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    out.unlink()
    return seconds


def _in_process(system, n: int, resolution: int, chunk_size: int, workers: int, out: Path):
    start = time.perf_counter()
    data.generate(system, n, resolution, 0, out, chunk_size=chunk_size, workers=workers)
    seconds = time.perf_counter() - start
    out.unlink()
    return seconds


def bench_data(
    resolution: int = 128,
    n: int = 4096,
    memory_n: tuple[int, ...] = (1024, 8192),
    systems: tuple[str, ...] = ("poisson", "advdiff", "helmholtz"),
    chunk_size: int = 256,
    report=print,
) -> dict:
    """Measure generation speed (into an HDF5 file) and peak memory per system.

    Speed, three ways in one run: ``n`` samples written by :func:`scifm.data.generate` in this
    process on one solver thread and on all CPUs (after a warm-up of one chunk), and the wall
    time of a fresh ``scifm generate`` process, start-up included (what a user's command sees).
    Memory: peak resident set size of a fresh process generating ``memory_n`` samples each, to
    show that it does not grow with ``n``. ``report(row)`` is called after each system.

    Raises:
        ValueError: ``n``, ``chunk_size`` or a ``memory_n`` not an integer >= 1, no
            ``memory_n`` or ``systems``, an unknown system, or a resolution
            :func:`scifm.data.generate` refuses (its warm-up is the first thing run).
    """
    check_count("n", n)
    check_count("chunk_size", chunk_size)
    memory_n = check_counts("memory_n", memory_n)
    objects = {name: pdes.get_system(name) for name in check_nonempty("systems", systems)}
    workers = data.default_workers()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, system in objects.items():
            data.generate(system, chunk_size, resolution, 1, workdir / "warm.h5", overwrite=True)
            speed = workdir / "speed.h5"
            one = _in_process(system, n, resolution, chunk_size, 1, speed)
            seconds = _in_process(system, n, resolution, chunk_size, workers, speed)
            process = _whole_process(name, n, resolution, workdir)
            row = {
                "system": name,
                "resolution": resolution,
                "n": n,
                "workers": workers,
                "seconds": seconds,
                "samples_per_s": n / seconds,
                "samples_per_s_one_thread": n / one,
                "process_seconds": process,
                "process_samples_per_s": n / process,
            }
            for m in memory_n:
                _, mib = _peak_memory(name, m, resolution, workdir)
                row[f"peak_rss_mib_n{m}"] = mib
            rows.append(row)
            report(row)
    return {
        "benchmark": "data",
        "machine": machine(),
        "chunk_size": chunk_size,
        "memory_n": list(memory_n),
        "rows": rows,
    }


_PEAK = "peak_rss_mib_n"


def data_table(rows: list[dict]) -> fmt.Table:
    """:func:`bench_data`'s rows as text: samples/s (in process on one thread and on ``threads``,
    and of a whole ``scifm generate`` process) and peak MiB at each ``memory_n``."""
    counts = [k.removeprefix(_PEAK) for k in (rows[0] if rows else {}) if k.startswith(_PEAK)]
    columns = (
        "system",
        "resolution",
        "n",
        "threads",
        "samples/s, 1 thread",
        "samples/s",
        "whole process",
        *(f"peak MiB (n={m})" for m in counts),
    )
    cells = [
        (
            r["system"],
            str(r["resolution"]),
            fmt.count(r["n"]),
            str(r["workers"]),
            fmt.rate(r["samples_per_s_one_thread"], 0),
            fmt.rate(r["samples_per_s"], 0),
            fmt.rate(r["process_samples_per_s"], 0),
            *(fmt.mib(r[f"{_PEAK}{m}"]) for m in counts),
        )
        for r in rows
    ]
    return fmt.Table(columns, cells)
