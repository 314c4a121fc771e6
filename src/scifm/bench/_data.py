"""`scifm bench data`: samples/s of dataset generation and peak memory against n."""

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
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, system in objects.items():
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
    return {
        "benchmark": "data",
        "machine": machine(),
        "chunk_size": chunk_size,
        "memory_n": list(memory_n),
        "rows": rows,
    }


_PEAK = "peak_rss_mib_n"


def data_table(rows: list[dict]) -> fmt.Table:
    """:func:`bench_data`'s rows as text: samples/s and peak MiB at each ``memory_n``."""
    counts = [k.removeprefix(_PEAK) for k in (rows[0] if rows else {}) if k.startswith(_PEAK)]
    columns = ("system", "resolution", "n", "samples/s", *(f"peak MiB (n={m})" for m in counts))
    cells = [
        (
            r["system"],
            str(r["resolution"]),
            fmt.count(r["n"]),
            fmt.rate(r["samples_per_s"], 0),
            *(fmt.mib(r[f"{_PEAK}{m}"]) for m in counts),
        )
        for r in rows
    ]
    return fmt.Table(columns, cells)
