"""Progress bars for long work: one rich display, any number of bars, nothing when disabled.

Every command that runs for long (data generation, training, sweeps, PINNs) shows its work
through this module, so they look alike: description, bar, done/total, a free text field
(loss, rate, ...), elapsed and remaining time. The display starts on the first update, so an
argument error raised before any work prints alone.
"""

from __future__ import annotations

import time
from typing import Protocol


class Display:
    """A rich live display holding bars; with ``enabled=False`` every call does nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress = None

    def _live(self):
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._progress.start()
        return self._progress

    def bar(self, description: str, total: int, completed: int = 0, unit: str | None = None) -> Bar:
        """A new bar; with ``unit``, its text shows the rate of work done since it was made."""
        return Bar(self, description, total, completed, unit)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Bar:
    """One line of a :class:`Display` (made by :meth:`Display.bar`)."""

    def __init__(self, display: Display, description, total, completed, unit):
        self.display, self.description, self.total = display, description, total
        self.completed, self.unit, self._task = completed, unit, None
        self._start, self._base = time.perf_counter(), completed

    def update(self, advance: int = 0, completed: int | None = None, info: str | None = None):
        """Move the bar (by ``advance``, or to ``completed``) and set its text."""
        if not self.display.enabled:
            return
        progress = self.display._live()
        if self._task is None:
            self._task = progress.add_task(
                self.description, total=self.total, completed=self.completed, info=""
            )
        self.completed = completed if completed is not None else self.completed + advance
        if info is None and self.unit is not None:
            rate = (self.completed - self._base) / max(time.perf_counter() - self._start, 1e-9)
            info = f"{rate:,.0f} {self.unit}/s"
        fields = {} if info is None else {"info": info}
        progress.update(self._task, completed=self.completed, **fields)

    def __call__(self, k: int) -> None:
        """Advance by ``k`` (the callback form ``progress(k)`` used by data generation)."""
        self.update(advance=k)

    def remove(self) -> None:
        if self._task is not None and self.display._progress is not None:
            self.display._progress.remove_task(self._task)
        self._task = None


class RunProgress(Protocol):
    """What a training loop tells about its run (``scifm.train.fit``, ``scifm.pinn.fit``).

    ``start(total, done)`` once (``done`` steps were taken before a resume), ``step(loss,
    samples)`` after every step, ``evaluated(name, value, at)`` after an evaluation, and
    ``close()`` at the end, also on an error.
    """

    def start(self, total: int, done: int) -> None: ...

    def step(self, loss: float, samples: int) -> None: ...

    def evaluated(self, name: str, value: float, at: str) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Shows nothing: the default progress of every library loop."""

    def start(self, total: int, done: int) -> None:
        pass

    def step(self, loss: float, samples: int) -> None:
        pass

    def evaluated(self, name: str, value: float, at: str) -> None:
        pass

    def close(self) -> None:
        pass


class RunBar:
    """The bar of one training run on a :class:`Display`: last loss, last evaluation, rate.

    ``unit`` is what the rate counts (``samples`` for operators, ``it`` for steps); ``quantity``
    names the number shown (``loss``; ``F (Ha)`` for DFT, with more ``digits``). ``close``
    removes the line (and closes the display when the bar owns it).
    """

    def __init__(
        self,
        display: Display,
        description: str,
        unit: str = "samples",
        owns_display: bool = False,
        quantity: str = "loss",
        digits: int = 3,
    ):
        self.display, self.description, self.unit = display, description, unit
        self.quantity, self.digits = quantity, digits
        self.owns, self.bar = owns_display, None
        self.loss, self.value, self.count = "-", "", 0
        self._start = time.perf_counter()

    def start(self, total: int, done: int) -> None:
        if done and self.display.enabled:
            print(f"{self.description}: resuming at step {done:,} of {total:,}", flush=True)
        self.bar = self.display.bar(self.description, total, done)
        self._start = time.perf_counter()

    def step(self, loss: float, samples: int) -> None:
        self.count += samples
        self.loss = f"{loss:.{self.digits}g}"
        rate = self.count / max(time.perf_counter() - self._start, 1e-9)
        self.bar.update(advance=1, info=f"{self.quantity} {self.loss}{self.value} | {rate:,.1f} {self.unit}/s")

    def evaluated(self, name: str, value: float, at: str) -> None:
        self.value = f" | {name} {value:.3g} ({at})"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.remove()
        if self.owns:
            self.display.close()
