"""Benchmarks behind `scifm bench`: each measures, returns JSON-able results and renders
them as a :class:`Table` of formatted numbers (the CLI prints it and writes the JSON).

The data benchmark and the shared measuring and reporting tools are here; the FNO and PINN
benchmarks are the public submodules :mod:`scifm.bench.fno` and :mod:`scifm.bench.pinn`
(``from scifm.bench import fno``), so that importing this package, as the data benchmark's
memory-measuring subprocesses do, does not start the JAX runtime, and the PINN worker
(``python -m scifm.bench.pinn``) is not imported twice.
"""

from __future__ import annotations

from scifm.bench._data import bench_data as bench_data
from scifm.bench._data import data_table as data_table
from scifm.bench._measure import machine as machine
from scifm.bench._measure import peak_rss_mib as peak_rss_mib
from scifm.bench._measure import time_process as time_process
from scifm.bench._measure import xla_memory_bytes as xla_memory_bytes
from scifm.bench._report import Table as Table
from scifm.bench._report import check_output as check_output
from scifm.bench._report import default_output as default_output
from scifm.bench._report import run_script as run_script
from scifm.bench._report import write_json as write_json

__all__ = [
    "Table",
    "bench_data",
    "check_output",
    "data_table",
    "default_output",
    "machine",
    "peak_rss_mib",
    "run_script",
    "time_process",
    "write_json",
    "xla_memory_bytes",
]
