"""Training curves of an operator run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from scifm._io import figure, read_jsonl, save_figure


def plot_curves(run: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Training loss and validation relative L2 error against epochs, log scale.

    Reads ``run/metrics.jsonl`` (and the loss's name from ``run/config.json``); writes the PNG
    atomically to ``path`` (default ``run/loss.png``) and returns it.
    """
    run = Path(run)
    metrics = read_jsonl(run / "metrics.jsonl")
    loss = json.loads((run / "config.json").read_text()).get("loss", "loss")
    fig = figure(figsize=(6, 4))
    ax = fig.add_subplot()
    epochs = [m["epoch"] for m in metrics]
    ax.semilogy(epochs, [m["train_loss"] for m in metrics], label=f"train {loss}")
    ax.semilogy(epochs, [m["val_rel_l2"] for m in metrics], label="validation relative L2")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, run / "loss.png" if path is None else path)
