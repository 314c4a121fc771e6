"""Benchmarks behind `scifm bench`: each measures, returns JSON-able results and renders
them as a :class:`Table` of formatted numbers (the CLI prints it and writes the JSON).

The FNO and PINN benchmarks load on first use (``scifm.bench.bench_fno`` and the other
names of ``_fno`` and ``_pinn``), so the data benchmark (and its memory-measuring
subprocesses) does not start the JAX runtime, and the PINN worker subprocess
(``python -m scifm.bench._pinn``) is not imported twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scifm.bench._data import bench_data as bench_data
from scifm.bench._data import data_table as data_table
from scifm.bench._measure import machine as machine
from scifm.bench._measure import peak_rss_mib as peak_rss_mib
from scifm.bench._measure import xla_memory_bytes as xla_memory_bytes
from scifm.bench._report import Table as Table
from scifm.bench._report import check_output as check_output
from scifm.bench._report import default_output as default_output
from scifm.bench._report import write_json as write_json

if TYPE_CHECKING:
    from scifm.bench._fno import bench_finetune as bench_finetune
    from scifm.bench._fno import bench_fno as bench_fno
    from scifm.bench._fno import bench_step as bench_step
    from scifm.bench._fno import finetune_table as finetune_table
    from scifm.bench._fno import fno_table as fno_table
    from scifm.bench._pinn import bench_pinn as bench_pinn
    from scifm.bench._pinn import pinn_table as pinn_table

__all__ = [
    "Table",
    "bench_data",
    "bench_finetune",
    "bench_fno",
    "bench_pinn",
    "bench_step",
    "check_output",
    "data_table",
    "default_output",
    "finetune_table",
    "fno_table",
    "machine",
    "peak_rss_mib",
    "pinn_table",
    "write_json",
    "xla_memory_bytes",
]

_LAZY = {
    "bench_finetune": "_fno",
    "bench_fno": "_fno",
    "bench_step": "_fno",
    "finetune_table": "_fno",
    "fno_table": "_fno",
    "bench_pinn": "_pinn",
    "pinn_table": "_pinn",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"scifm.bench.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scifm.bench' has no attribute {name!r}")
