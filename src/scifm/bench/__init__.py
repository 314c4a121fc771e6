"""Benchmarks behind `scifm bench`: each measures, prints a table and returns JSON-able results.

The FNO and PINN benchmarks load on first use, so the data benchmark (and its memory
measurement) does not start the JAX runtime.
"""

from scifm.bench._data import bench_data, machine, peak_rss_mib, write_json

__all__ = [
    "bench_data",
    "bench_finetune",
    "bench_fno",
    "bench_pinn",
    "bench_step",
    "machine",
    "peak_rss_mib",
    "write_json",
]

_LAZY = {"bench_finetune": "_fno", "bench_fno": "_fno", "bench_step": "_fno", "bench_pinn": "_pinn"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"scifm.bench.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scifm.bench' has no attribute {name!r}")
