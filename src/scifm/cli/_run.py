"""What the long-running commands share: a progress bar that also redraws the run's plot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


class BarAndPlot:
    """The run's bar (:class:`scifm.RunBar`), and its plot redrawn after an evaluation, so
    that a long run's curves can be watched while it trains.

    The plot is redrawn at most once every ``every_s`` seconds of the run (a figure costs
    about a second: a short run would spend a tenth of its time drawing); the command draws
    the final one after the run.
    """

    def __init__(
        self,
        description: str,
        out: str | None,
        plot: Callable,
        unit: str = "samples",
        every_s: float = 30.0,
    ):
        from scifm._progress import Display, RunBar

        self.bar = RunBar(Display(), description, unit=unit, owns_display=True)
        self.out, self.plot = (Path(out) if out else None), plot
        self.every_s, self.drawn = every_s, time.monotonic()

    def start(self, total: int, done: int) -> None:
        self.bar.start(total, done)
        self.drawn = time.monotonic()

    def step(self, loss: float, samples: int) -> None:
        self.bar.step(loss, samples)

    def evaluated(self, name: str, value: float, at: str) -> None:
        self.bar.evaluated(name, value, at)
        due = time.monotonic() - self.drawn >= self.every_s
        if due and self.out is not None and (self.out / "metrics.jsonl").exists():
            self.plot(self.out)
            self.drawn = time.monotonic()

    def close(self) -> None:
        self.bar.close()
