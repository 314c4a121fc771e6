"""A study's figures, drawn on :func:`scifm._io.figure` (no pyplot, no backend switch).

Each function returns a :class:`matplotlib.figure.Figure` (or None when the study has
nothing to show) for the caller to save with :func:`scifm._io.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scifm._io import figure
from scifm.experiments._analysis import CurvePoint, curves, forgetting
from scifm.experiments._config import Study
from scifm.experiments._points import Method, MethodKind
from scifm.experiments._results import Row

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE = {Method.scratch(): ("C0", "o")}  # fine-tuning methods take C1, C2, ... and squares
PHYSICS = ("C9", "^")  # physics-informed fine-tuning: its label-free error is a dotted line


def plot_error_vs_n(study: Study, rows: Sequence[Row]) -> Figure:
    """Test error against downstream examples, log-log; one panel per preset and task.

    Error bars are confidence intervals over seeds (standard errors over test samples with one
    seed); zero-shot is a dashed horizontal line, physics-informed
    fine-tuning with no label a dotted one (its n counts labelled inputs among all).
    """
    data = curves(rows)
    nr, nc = len(study.presets), len(study.downstream)
    fig = figure(figsize=(4.2 * nc, 3.4 * nr))
    axes = fig.subplots(nr, nc, squeeze=False, sharex=True)
    for i, preset in enumerate(study.presets):
        for j, task in enumerate(study.downstream):
            ax = axes[i][j]
            panel = data.get((preset, task), {})
            k = 1
            for method, pts in panel.items():
                if method.kind is MethodKind.ZERO_SHOT:
                    ax.axhline(pts[0].error, color="0.4", ls="--", lw=1.2, label=method.label)
                    continue
                color, marker = STYLE.get(method, (f"C{k}", "s"))
                k += method.kind is MethodKind.FINETUNE
                if method.kind is MethodKind.PHYSICS:  # n = labels; 0 has no place on log x
                    color, marker = PHYSICS
                    free = [p for p in pts if p.n == 0]
                    if free:
                        ax.axhline(
                            free[0].error,
                            color=color,
                            ls=":",
                            lw=1.4,
                            label=f"{method.label}, 0 labels",
                        )
                    pts = [p for p in pts if p.n > 0]
                    if not pts:
                        continue
                ax.errorbar(
                    [p.n for p in pts],
                    [p.error for p in pts],
                    yerr=_error_bars(pts),
                    color=color,
                    marker=marker,
                    ms=4,
                    capsize=2,
                    label=method.label,
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{preset} · {task} ({study.tasks[task].shift})", fontsize=9)
            if i == nr - 1:
                ax.set_xlabel("downstream examples n")
            if j == 0:
                ax.set_ylabel("test relative L2")
            if panel:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _error_bars(points: Sequence[CurvePoint]) -> list[list[float]]:
    """Below and above each point: its interval over seeds, else the standard error over
    its test samples (one seed). An interval reaching below zero is cut at the log axis."""
    below, above = [], []
    for p in points:
        if p.lo is None:
            se = p.std / math.sqrt(p.samples)
            below.append(min(se, 0.999 * p.error))
            above.append(se)
        else:
            below.append(min(p.error - p.lo, 0.999 * p.error))
            above.append(p.hi - p.error)
    return [below, above]


def plot_gain_vs_size(study: Study, rows: Sequence[Row]) -> Figure | None:
    """Error ratio scratch / fine-tuned (the first strategy) at the smallest and the largest
    n, against parameters; None with one preset."""
    if len(study.presets) < 2:
        return None
    data = curves(rows)
    params = {r.preset: r.parameters for r in rows if r.parameters is not None}
    fig = figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for j, task in enumerate(study.downstream):
        for which, ls in ((0, "-"), (-1, ":")):
            xs, ys = [], []
            for preset in study.presets:
                panel = data.get((preset, task), {})
                sc = panel.get(Method.scratch())
                ft = next((v for m, v in panel.items() if m.kind is MethodKind.FINETUNE), None)
                if sc and ft and preset in params:
                    xs.append(params[preset])
                    ys.append(sc[which].error / ft[which].error)
            if xs:
                n = study.n_values[which]
                ax.plot(xs, ys, ls=ls, marker="o", color=f"C{j}", label=f"{task}, n={n}")
    ax.axhline(1, color="0.5", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("scratch error / fine-tuned error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_forgetting(study: Study, rows: Sequence[Row]) -> Figure | None:
    """Downstream error against retained (pre-training) error, per strategy, labelled by n;
    None without fine-tuned rows tested on the pre-training tasks."""
    points = forgetting(rows)
    if not points:
        return None
    nr, nc = len(study.presets), len(study.downstream)
    fig = figure(figsize=(4.4 * nc, 3.6 * nr))
    axes = fig.subplots(nr, nc, squeeze=False)
    strategies = list(dict.fromkeys(f.strategy for f in points))
    zero = {}  # the pre-trained model's errors, mean over seeds: (retained, downstream)
    for key in {(r.preset, r.task) for r in rows}:
        runs = [
            r
            for r in rows
            if (r.preset, r.task) == key
            and r.method.kind is MethodKind.ZERO_SHOT
            and r.retained_rel_l2 is not None
        ]
        if runs:
            zero[key] = (
                sum(r.retained_rel_l2 for r in runs) / len(runs),
                sum(r.test_rel_l2 for r in runs) / len(runs),
            )
    for i, preset in enumerate(study.presets):
        for j, task in enumerate(study.downstream):
            ax = axes[i][j]
            for k, strategy in enumerate(strategies):
                pts = [
                    f for f in points if (f.preset, f.task, f.strategy) == (preset, task, strategy)
                ]
                if not pts:
                    continue
                ax.plot(
                    [f.retained for f in pts],
                    [f.downstream for f in pts],
                    "-o",
                    color=f"C{k + 1}",
                    ms=4,
                    label=strategy,
                )
                for f in pts:
                    ax.annotate(
                        str(f.n),
                        (f.retained, f.downstream),
                        fontsize=6,
                        xytext=(3, 2),
                        textcoords="offset points",
                    )
            z = zero.get((preset, task))
            if z is not None:
                ax.plot(*z, "k*", ms=9, label="pre-trained")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{preset} · {task}", fontsize=9)
            ax.set_xlabel("error on pre-training tasks (retained)")
            if j == 0:
                ax.set_ylabel("downstream test error")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
