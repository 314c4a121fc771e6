"""Summaries and pictures of datasets (for `scifm inspect` and the demo)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scifm._io import figure, save_figure
from scifm.data._reader import PDEDataset, grid_text
from scifm.pdes import COEFFICIENT_NAMES


def summary(data: PDEDataset, max_samples: int = 256) -> dict:
    """A JSON-able summary: layout, system, sizes, ranges, column and field statistics.

    ``grid`` is ``[H, W]`` (grids need not be square). Field statistics are over the first
    ``max_samples`` samples (datasets may not fit in memory).
    """
    m = min(len(data), max_samples)
    f, u = np.asarray(data.inputs[:m]), np.asarray(data.outputs[:m])

    def stats(x: np.ndarray) -> dict:
        return {
            "min": float(x.min()),
            "max": float(x.max()),
            "mean": float(x.mean()),
            "std": float(x.std()),
        }

    return {
        "path": str(data.path),
        "layout": data.layout.value,
        "system": data.system,
        "n": len(data),
        "grid": list(data.grid),
        "equation": data.attrs.get("equation"),
        "ranges": data.ranges(),
        "seed": data.attrs.get("seed"),
        "scifm_version": data.attrs.get("scifm_version"),
        "created": data.attrs.get("created"),
        "coefficients": {
            k: stats(data.coefficients[:, i]) for i, k in enumerate(COEFFICIENT_NAMES)
        },
        "parameters": {k: stats(data.parameters[:, i]) for i, k in enumerate(data.parameter_names)},
        "input_names": list(data.input_names),
        "output_names": list(data.output_names),
        **{
            f"{_role(name, True)} (first {m})": stats(f[:, j])
            for j, name in enumerate(data.input_names)
        },
        **{
            f"{_role(name, False)} (first {m})": stats(u[:, j])
            for j, name in enumerate(data.output_names)
        },
    }


def _role(name: str, is_input: bool) -> str:
    """How a channel is called in summaries and plots: "source", "solution", "field a", ..."""
    if is_input:
        return "source" if name == "f" else f"field {name}"
    return "solution" if name == "u" else f"output {name}"


def plot_samples(data: PDEDataset, path: str | os.PathLike, count: int = 4) -> Path:
    """Write a PNG: one row per sample, its input and output fields side by side (source,
    coefficient fields, solution), coefficients and parameters below."""
    count = max(1, min(count, len(data)))
    columns = [(name, True) for name in data.input_names]
    columns += [(name, False) for name in data.output_names]
    fig = figure(figsize=(3.5 * len(columns), 3.1 * count))
    axes = fig.subplots(count, len(columns), squeeze=False)
    extent = (0, 1, 0, 1)
    for row in range(count):
        f, u = np.asarray(data.inputs[row]), np.asarray(data.outputs[row])
        fields = [*f, *u]
        c = data.coefficients[row]
        label = ", ".join(
            f"{k}={v:.3g}" for k, v in zip(COEFFICIENT_NAMES, c, strict=True) if v != 0
        )
        params = ", ".join(
            f"{k}={v:.3g}" for k, v in zip(data.parameter_names, data.parameters[row], strict=True)
        )
        for ax, field, (name, is_input) in zip(axes[row], fields, columns, strict=True):
            cmap = "viridis" if is_input else "RdBu_r"
            im = ax.imshow(field.T, origin="lower", extent=extent, cmap=cmap)
            title = _role(name, is_input)
            title = f"{title} {name}" if title in ("source", "solution") else title
            ax.set_title(f"#{row} {title}", fontsize=9)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        axes[row, 0].text(
            0.0,
            -0.32,
            label + ("\n" + params if params else ""),
            transform=axes[row, 0].transAxes,
            fontsize=7,
            va="top",
        )
    fig.suptitle(
        f"{data.system or 'unknown system'}: {data.path.name} ({len(data)} samples, "
        f"{grid_text(data.grid)})",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)
