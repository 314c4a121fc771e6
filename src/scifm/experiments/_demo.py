"""`scifm demo`: small datasets of every system, in and out of distribution, with pictures.

Until the transfer study lands, the demo shows the data side of scifm on the embedded defaults:
one dataset per task of the study (the pre-training systems and their shifted variants), a
PNG of examples for each, and a summary report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from scifm import data, pdes

# (file stem, system, what the task is in the transfer study)
TASKS = (
    ("poisson_e1-5", pdes.Poisson(eig_range=(1, 5)), "pre-training, in distribution"),
    ("poisson_e5-10", pdes.Poisson(eig_range=(5, 10)), "downstream, moderate shift"),
    ("poisson_e10-20", pdes.Poisson(eig_range=(10, 20)), "downstream, strong shift"),
    ("helmholtz_w1-10", pdes.Helmholtz(omega_range=(1, 10)), "pre-training, in distribution"),
    ("helmholtz_w10-20", pdes.Helmholtz(omega_range=(10, 20)), "downstream, shifted"),
    ("advdiff_psi0.2-1", pdes.AdvectionDiffusion(ratio_range=(0.2, 1)), "downstream, new system"),
    ("advdiff_psi1-2", pdes.AdvectionDiffusion(ratio_range=(1, 2)), "downstream, shifted"),
)


def run_demo(
    out: str | Path,
    n: int = 256,
    resolution: int = 64,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate every task's dataset into ``out`` with a picture each; return the report path.

    Finished datasets are kept and reused, so an interrupted demo resumes.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, system, role in TASKS:
        path = out / f"{stem}.h5"
        start = time.perf_counter()
        if not path.exists():
            data.generate(system, n, resolution, seed, path, progress=progress)
        elif progress is not None:
            progress(n)
        seconds = time.perf_counter() - start
        with data.open(path) as ds:
            info = data.summary(ds)
            data.plot_samples(ds, out / f"{stem}.png", count=3)
        rows.append({"task": stem, "role": role, "seconds": seconds, **info})
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    report = out / "report.md"
    lines = [
        "# scifm demo: the datasets of the transfer study",
        "",
        f"{n} samples per task at {resolution}x{resolution}, seed {seed}. Every file stores the "
        "source `f` and solution `u` of",
        "",
        f"    {pdes.EQUATION}",
        "",
        "with the coefficients of each sample, so any sample's residual can be checked from the file.",
        "",
        "| task | role | system | ranges | max abs(u) | time (s) | picture |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        u = r[f"solution (first {min(r['n'], 256)})"]
        ranges = ", ".join(f"{k} {v[0]:g}-{v[1]:g}" for k, v in r["ranges"].items())
        umax = max(abs(u["min"]), abs(u["max"]))
        lines.append(
            f"| {r['task']} | {r['role']} | {r['system']} | {ranges} | {umax:.3g} "
            f"| {r['seconds']:.2f} | ![]({r['task']}.png) |"
        )
    report.write_text("\n".join(lines) + "\n")
    return report
