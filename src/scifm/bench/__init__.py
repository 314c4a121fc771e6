"""Benchmarks behind `scifm bench`: each measures, prints a table and returns JSON-able results."""

from scifm.bench._data import bench_data, machine, write_json

__all__ = ["bench_data", "machine", "write_json"]
