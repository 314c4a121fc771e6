"""Benchmarks run and write their JSON (their numbers are recorded in BENCHMARKS.md, not asserted)."""

import json
import subprocess
import sys


def test_bench_fno_writes_json(tmp_path):
    out = tmp_path / "fno.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "scifm.cli",
            "bench",
            "fno",
            "--presets",
            "fno-64k,fno-67m",
            "--resolutions",
            "32",
            "--steps",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    [row] = result["rows"]
    assert row["preset"] == "fno-64k" and row["resolution"] == 32 and row["batch"] == 8
    assert row["step_seconds"] > 0 and row["xla_peak_mib"] > 0 and row["parameters"] == 67_329
    assert result["skipped"] == ["fno-67m at 32: 32 modes need >= 64 points"]
    assert "skipped: fno-67m" in r.stdout


def test_finetune_strategies_bench_reports_against_full():
    from scifm import bench

    result = bench.bench_finetune(
        "fno-64k", 16, 2, ("full", "spider"), steps=2, report=lambda r: None
    )
    full, spider = result["rows"]
    assert full["strategy"] == "full" and full["time_vs_full"] == 1.0
    assert spider["step_seconds"] > 0 and spider["time_vs_full"] > 0
    if spider.get("memory_vs_full"):  # SPIDER keeps theta_0, I_pre and G_t: more state
        assert spider["xla_peak_mib"] > full["xla_peak_mib"]
