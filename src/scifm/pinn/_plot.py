"""Loss and error curves of a PINN run (PNG)."""

from __future__ import annotations

import os
from pathlib import Path

from .._io import figure, read_jsonl, save_figure


def plot_metrics(run: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Training loss and relative L2 error against step, from ``run/metrics.jsonl``.

    Writes the PNG atomically to ``path`` (default ``run/loss.png``) and returns it.
    """
    run = Path(run)
    rows = read_jsonl(run / "metrics.jsonl")
    fig = figure(figsize=(9, 3.5))
    a, b = fig.subplots(1, 2)
    a.semilogy([r["step"] for r in rows], [r["loss"] for r in rows])
    a.set(xlabel="step", ylabel="training loss", title="PINN loss")
    ev = [r for r in rows if "rel_l2" in r]
    b.semilogy([r["step"] for r in ev], [r["rel_l2"] for r in ev], "o-")
    b.set(xlabel="step", ylabel="relative L2 error", title="error vs exact solution")
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, run / "loss.png" if path is None else path)
