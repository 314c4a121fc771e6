"""Loss and error curves of a PINN run (PNG)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_metrics(metrics: str | Path, out: str | Path) -> Path:
    """Plot training loss and relative L2 error against step from ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(r) for r in Path(metrics).read_text().splitlines() if r.strip()]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.semilogy([r["step"] for r in rows], [r["loss"] for r in rows])
    a.set(xlabel="step", ylabel="training loss", title="PINN loss")
    ev = [r for r in rows if "rel_l2" in r]
    b.semilogy([r["step"] for r in ev], [r["rel_l2"] for r in ev], "o-")
    b.set(xlabel="step", ylabel="relative L2 error", title="error vs exact solution")
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
