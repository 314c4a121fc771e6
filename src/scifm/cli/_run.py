"""What the long-running commands share: a progress bar that also redraws the run's plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class BarAndPlot:
    """The run's bar (:class:`scifm.RunBar`), and its ``loss.png`` redrawn after every
    evaluation, so that a long run's curves can be watched while it trains."""

    def __init__(self, description: str, out: str | None, plot: Callable, unit: str = "samples"):
        from scifm._progress import Display, RunBar

        self.bar = RunBar(Display(), description, unit=unit, owns_display=True)
        self.out, self.plot = (Path(out) if out else None), plot

    def start(self, total: int, done: int) -> None:
        self.bar.start(total, done)

    def step(self, loss: float, samples: int) -> None:
        self.bar.step(loss, samples)

    def evaluated(self, name: str, value: float, at: str) -> None:
        self.bar.evaluated(name, value, at)
        if self.out is not None and (self.out / "metrics.jsonl").exists():
            self.plot(self.out)

    def close(self) -> None:
        self.bar.close()
