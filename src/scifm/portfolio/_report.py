"""A back-test's files: ``metrics.json`` (written last: its presence means complete),
``daily.csv`` (date, wealth, weights after each close, the policy's targets) and
``wealth.png`` (wealth and weights over time)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scifm._checks import OutputExists
from scifm._io import atomic_write_json, atomic_write_text, figure, save_figure
from scifm.portfolio._engine import Backtest

METRICS = "metrics.json"


def plot_backtest(result: Backtest, path: str | Path, benchmarks: dict[str, Backtest] | None = None):
    """Wealth (and the ``benchmarks``' wealth, for comparison) above the weights, stacked."""
    fig = figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    dates = result.dates.astype("datetime64[D]").astype(object)
    top.plot(dates, result.wealth, label=result.policy + (" (hindsight)" if result.hindsight else ""))
    for name, other in (benchmarks or {}).items():
        top.plot(dates, other.wealth, label=name, lw=1, alpha=0.8)
    top.set_ylabel("wealth, net of costs")
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)
    labels = ("cash", *result.assets)
    bottom.stackplot(dates, result.weights.T, labels=labels)
    bottom.set_ylabel("weights")
    bottom.set_ylim(0, 1)
    if len(labels) <= 10:
        bottom.legend(loc="upper left", fontsize=7, ncol=min(len(labels), 6))
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)


def write_backtest(
    result: Backtest, out: str | Path, *, overwrite: bool = False, risk_free: float = 0.0,
    about: dict | None = None,
) -> dict:
    """Write the back-test's files into ``out`` (see the module docstring); returns metrics.

    Raises:
        OutputExists: ``out`` holds a finished back-test and ``overwrite`` is False.
    """
    out = Path(out)
    if (out / METRICS).exists() and not overwrite:
        raise OutputExists(out / METRICS)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS).unlink(missing_ok=True)  # replaced last: no stale marker meanwhile
    names = ["cash", *result.assets]
    header = ["date", "wealth", *(f"w_{a}" for a in names), *(f"target_{a}" for a in names)]
    lines = [",".join(header)]
    targets = np.vstack([result.targets, np.full((1, len(names)), np.nan)])  # none at the end
    for k, date in enumerate(result.dates):
        row = [str(date), repr(float(result.wealth[k]))]
        row += [f"{x:.10g}" for x in result.weights[k]] + [f"{x:.10g}" for x in targets[k]]
        lines.append(",".join(row))
    atomic_write_text(out / "daily.csv", "\n".join(lines) + "\n")
    plot_backtest(result, out / "wealth.png")
    metrics = result.metrics(risk_free)
    document = {
        **metrics,
        "policy": result.policy,
        "hindsight": result.hindsight,
        "start": str(result.dates[0]),
        "end": str(result.dates[-1]),
        "assets": list(result.assets),
        **result.settings,
        **(about or {}),
    }
    atomic_write_json(out / METRICS, document)
    return json.loads((out / METRICS).read_text())
