"""Benchmarks behind `scifm bench`: each measures, prints a table and returns JSON-able results."""

from scifm.bench._data import bench_data, machine, write_json
from scifm.bench._fno import bench_fno, bench_step
from scifm.bench._pinn import bench_pinn

__all__ = ["bench_data", "bench_fno", "bench_pinn", "bench_step", "machine", "write_json"]
