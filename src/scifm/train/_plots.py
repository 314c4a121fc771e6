"""Training curves."""

from __future__ import annotations

import os
from pathlib import Path


def plot_curves(metrics: list[dict], path: Path, loss: str = "loss") -> Path:
    """Training loss and validation relative L2 error against epochs, log scale; atomic PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in metrics]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(epochs, [m["train_loss"] for m in metrics], label=f"train {loss}")
    ax.semilogy(epochs, [m["val_rel_l2"] for m in metrics], label="validation relative L2")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
