"""What a study's rows say: error curves, the data saving of fine-tuning, forgetting.

The headline number, per preset and downstream task: the data saving of fine-tuning. Let
``T`` be the test error scratch training reaches with the most downstream data ``n_max``; find
the smallest ``n*`` at which fine-tuning reaches ``T`` (log-log interpolation between the
grid's ``n``); the saving is ``n_max / n*``. When fine-tuning already beats ``T`` at the
smallest ``n`` of the grid, the saving is only known to be at least ``n_max / n_min``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from scifm.experiments._config import Study
from scifm.experiments._points import Method, MethodKind
from scifm.experiments._results import Row


class CurvePoint(NamedTuple):
    """One point of an error curve: test error (mean, std over ``samples``) at ``n``."""

    n: int
    error: float
    std: float
    samples: int


Curves = dict[tuple[str, str], dict[Method, list[CurvePoint]]]


def curves(rows: Sequence[Row]) -> Curves:
    """``(preset, task) -> {method: [CurvePoint, ...] by n}`` over the selected, tested rows.

    Methods keep the order of ``rows`` (results.csv's: zero-shot, scratch, fine-tuning).
    """
    out = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if not r.selected or r.test_rel_l2 is None:
            continue
        out[(r.preset, r.task)][r.method].append(
            CurvePoint(r.n, r.test_rel_l2, r.test_rel_l2_std, r.test_samples)
        )
    for panel in out.values():
        for points in panel.values():
            points.sort()
    return {key: dict(panel) for key, panel in out.items()}


@dataclass(frozen=True)
class DataSaving:
    """How many times fewer downstream examples fine-tuning needs (see the module docstring).

    ``target`` is scratch's test error at ``n_max``; ``n_needed`` the (interpolated) n at
    which fine-tuning reaches it and ``saving = n_max / n_needed``, both None when it never
    does; ``bound``: fine-tuning beats the target already at the grid's smallest n, so the
    saving is a lower bound and ``n_needed`` an upper one.
    """

    n_max: int
    target: float
    finetune_at_n_max: float | None
    n_needed: float | None
    saving: float | None
    bound: bool

    def text(self) -> tuple[str, str]:
        """ "n fine-tuning needs" and "examples saved" as text: ("<= 8", ">= 64x")."""
        if self.saving is None:
            return "not reached", "< 1x"
        bound = self.bound
        return (
            f"{'<= ' if bound else ''}{self.n_needed:.3g}",
            f"{'>= ' if bound else ''}{self.saving:.3g}x",
        )


def data_saving(scratch: Sequence[CurvePoint], finetune: Sequence[CurvePoint]) -> DataSaving | None:
    """The data saving of ``finetune`` against ``scratch``: curves sorted by n (any tuples
    ``(n, error, ...)``); None without both curves."""
    if not scratch or not finetune:
        return None
    n_max, target = scratch[-1][0], scratch[-1][1]
    ft = [(n, e) for n, e, *_ in finetune]
    at_n_max = dict(ft).get(n_max)
    for i, (n, e) in enumerate(ft):
        if e <= target:
            if i == 0:
                return DataSaving(n_max, target, at_n_max, n, n_max / n, bound=True)
            (n0, e0) = ft[i - 1]
            t = (math.log(target) - math.log(e0)) / (math.log(e) - math.log(e0))
            needed = math.exp(math.log(n0) + t * (math.log(n) - math.log(n0)))
            return DataSaving(n_max, target, at_n_max, needed, n_max / needed, bound=False)
    return DataSaving(n_max, target, at_n_max, None, None, bound=False)


@dataclass(frozen=True)
class Headline:
    """The headline of one (preset, task, fine-tuning method): its data saving, and the
    pre-trained model's zero-shot error (None when not evaluated)."""

    preset: str
    task: str
    method: Method
    zero_shot: float | None
    saving: DataSaving


def headline(study: Study, rows: Sequence[Row]) -> list[Headline]:
    """One :class:`Headline` per (preset, task, fine-tuning method) with a scratch curve."""
    data = curves(rows)
    out = []
    for preset in study.presets:
        for task in study.downstream:
            panel = data.get((preset, task), {})
            zero = panel.get(Method.zero_shot())
            for method, points in panel.items():
                if method.kind is not MethodKind.FINETUNE:
                    continue
                s = data_saving(panel.get(Method.scratch(), []), points)
                if s is not None:
                    zero_shot = None if zero is None else zero[0].error
                    out.append(Headline(preset, task, method, zero_shot, s))
    return out


def harmonic_score(downstream: float, retained: float) -> float:
    """The combined forgetting score: harmonic mean of ``1 - E`` downstream and retained.

    ``E`` are mean relative L2 errors (1 = predicting zero), each floored at 0 accuracy. It is
    high only when the model both specialises (low downstream error) and still solves the
    pre-training tasks (low retained error); one of them at E >= 1 gives 0.
    """
    a, b = max(0.0, 1 - downstream), max(0.0, 1 - retained)
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


@dataclass(frozen=True)
class Forgetting:
    """A selected fine-tuned row: its downstream and retained (pre-training tasks) errors,
    their change from the pre-trained model (None without a zero-shot row), and
    :func:`harmonic_score`."""

    preset: str
    task: str
    strategy: str
    n: int
    downstream: float
    retained: float
    downstream_change: float | None
    retained_change: float | None
    score: float


def forgetting(rows: Sequence[Row]) -> list[Forgetting]:
    """One :class:`Forgetting` per selected fine-tuned (or physics-informed) row tested on the
    pre-training tasks, by preset, task, n and strategy."""
    zero = {
        (r.preset, r.task): r
        for r in rows
        if r.method.kind is MethodKind.ZERO_SHOT and r.retained_rel_l2 is not None
    }
    out = []
    for r in rows:
        finetuned = r.method.kind in (MethodKind.FINETUNE, MethodKind.PHYSICS)
        if not finetuned or not r.selected or r.retained_rel_l2 is None:
            continue
        z = zero.get((r.preset, r.task))
        ds, kept = r.test_rel_l2, r.retained_rel_l2
        out.append(
            Forgetting(
                preset=r.preset,
                task=r.task,
                strategy=r.method.strategy or r.method.slug,  # "physics" for physics-informed
                n=r.n,
                downstream=ds,
                retained=kept,
                downstream_change=None if z is None else ds - z.test_rel_l2,
                retained_change=None if z is None else kept - z.retained_rel_l2,
                score=harmonic_score(ds, kept),
            )
        )
    return sorted(out, key=lambda f: (f.preset, f.task, f.n, f.strategy))
