"""`scifm demo`: the transfer study on the embedded defaults (``configs/demo.toml``).

Pre-train the smallest FNO on a Poisson + Helmholtz mixture at 32x32, then fine-tune it to
advection-diffusion (a system it has not seen) and to strongly out-of-distribution Poisson
with 8 to 512 examples, against training from scratch; minutes on a 2-core CPU, data
generation included. An interrupted demo resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scifm.experiments._config import load_study
from scifm.experiments._sweep import sweep


def run_demo(
    out: str | Path,
    overrides: Sequence[str] = (),
    *,
    executor: str = "local",
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Run the demo study into ``out`` (``executor`` and ``jobs`` as for
    :func:`scifm.experiments.sweep`); returns the path of its report.md."""
    study = load_study("demo", overrides)
    return sweep(study, out, executor=executor, jobs=jobs, progress=progress)
