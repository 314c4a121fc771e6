"""What a study's rows say: error curves, the data saving of fine-tuning, forgetting.

The headline number, per preset and downstream task: the data saving of fine-tuning. Let
``T`` be the test error scratch training reaches with the most downstream data ``n_max``; find
the smallest ``n*`` at which fine-tuning reaches ``T`` (log-log interpolation between the
grid's ``n``); the saving is ``n_max / n*``. When fine-tuning already beats ``T`` at the
smallest ``n`` of the grid, the saving is only known to be at least ``n_max / n_min``.

With several seeds, curves are means over seeds with t confidence intervals
(:func:`interval`), the headline saving is that of the mean curves, and its interval is a t
interval on the log of each seed's own saving (:func:`saving_interval`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from scifm.experiments._config import Study
from scifm.experiments._points import Method, MethodKind
from scifm.experiments._results import Row

LEVEL = 0.95  # the confidence level of every interval over seeds


class Interval(NamedTuple):
    """The mean of ``seeds`` per-seed values and its two-sided :data:`LEVEL` confidence
    interval (Student's t with ``seeds - 1`` degrees of freedom); ``lo = hi = None`` for one
    seed, which has no interval."""

    mean: float
    lo: float | None
    hi: float | None
    seeds: int

    def excludes(self, value: float) -> int:
        """+1 if the interval lies above ``value``, -1 if below, 0 if it holds it or is None."""
        if self.lo is not None and self.lo > value:
            return 1
        if self.hi is not None and self.hi < value:
            return -1
        return 0


def interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and t confidence interval of ``values`` (one per seed, independent)."""
    x = np.asarray(values, float)
    k, mean = len(x), float(np.mean(x))
    if k < 2:
        return Interval(mean, None, None, k)
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * np.std(x, ddof=1) / math.sqrt(k))
    return Interval(mean, mean - half, mean + half, k)


class CurvePoint(NamedTuple):
    """One point of an error curve at ``n``: test error (the mean over ``seeds``; ``std`` the
    spread over the ``samples`` test examples, averaged over seeds), and with several seeds
    the confidence interval of the mean, ``lo`` to ``hi``."""

    n: int
    error: float
    std: float
    samples: int
    seeds: int = 1
    lo: float | None = None
    hi: float | None = None


Curves = dict[tuple[str, str], dict[Method, list[CurvePoint]]]


def curves(rows: Sequence[Row]) -> Curves:
    """``(preset, task) -> {method: [CurvePoint, ...] by n}`` over the selected, tested rows,
    each point the mean over the seeds that reached it (each seed selects its own rate).

    Methods keep the order of ``rows`` (results.csv's: zero-shot, scratch, fine-tuning).
    """
    groups = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        if not r.selected or r.test_rel_l2 is None:
            continue
        groups[(r.preset, r.task)][r.method][r.n].append(r)
    out = {}
    for key, panel in groups.items():
        out[key] = {}
        for method, by_n in panel.items():
            points = []
            for n, runs in sorted(by_n.items()):
                iv = interval([r.test_rel_l2 for r in runs])
                std = float(np.mean([r.test_rel_l2_std or 0.0 for r in runs]))
                samples = min(r.test_samples or 1 for r in runs)
                points.append(CurvePoint(n, iv.mean, std, samples, iv.seeds, iv.lo, iv.hi))
            out[key][method] = points
    return out


def seed_curves(rows: Sequence[Row]) -> dict[int | None, Curves]:
    """:func:`curves` of each seed alone: ``seed -> Curves`` (None: a table from before seeds)."""
    seeds = dict.fromkeys(r.seed for r in rows)
    return {seed: curves([r for r in rows if r.seed == seed]) for seed in seeds}


def seed_values(
    by_seed: dict[int | None, Curves], key: tuple[str, str], method: Method, index: int = 0
) -> dict[int | None, float]:
    """Each seed's error of ``method`` at the ``index``-th n of its curve in panel ``key``."""
    out = {}
    for seed, data in by_seed.items():
        points = data.get(key, {}).get(method)
        if points and -len(points) <= index < len(points):
            out[seed] = points[index].error
    return out


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
class SavingInterval:
    """The data saving's confidence interval over seeds: a t interval on the log of the
    per-seed savings, ``lo`` to ``hi`` (geometric). ``bound``: some seed's saving is only a
    lower bound (fine-tuning beat the target at the grid's smallest n), so the interval is
    one too. ``unreached`` counts seeds whose fine-tuning never reaches their scratch target;
    then there is no interval (``lo = hi = None``)."""

    seeds: int
    lo: float | None
    hi: float | None
    bound: bool
    unreached: int

    def text(self) -> str:
        if self.seeds < 2:
            return "one seed"
        if self.unreached:
            return f"{self.unreached} of {self.seeds} seeds never reach it"
        return f"{'>= ' if self.bound else ''}{self.lo:.3g}x to {self.hi:.3g}x ({self.seeds} seeds)"

    def decides(self, value: float) -> int:
        """+1: the saving is above ``value`` at this confidence; -1: below; 0: undecided."""
        if self.lo is None:
            return 0
        if self.lo > value:
            return 1
        return -1 if self.hi < value and not self.bound else 0


def saving_interval(savings: Sequence[DataSaving]) -> SavingInterval:
    """The interval of the per-seed ``savings`` (see :class:`SavingInterval`)."""
    unreached = sum(s.saving is None for s in savings)
    if unreached or len(savings) < 2:
        return SavingInterval(len(savings), None, None, False, unreached)
    iv = interval([math.log(s.saving) for s in savings])
    bound = any(s.bound for s in savings)
    return SavingInterval(len(savings), math.exp(iv.lo), math.exp(iv.hi), bound, 0)


@dataclass(frozen=True)
class Headline:
    """The headline of one (preset, task, fine-tuning method): its data saving on the curves
    averaged over seeds, its interval over the seeds' own savings, and the pre-trained
    model's zero-shot error (None when not evaluated)."""

    preset: str
    task: str
    method: Method
    zero_shot: float | None
    saving: DataSaving
    interval: SavingInterval


def headline(study: Study, rows: Sequence[Row]) -> list[Headline]:
    """One :class:`Headline` per (preset, task, fine-tuning method) with a scratch curve."""
    data, by_seed = curves(rows), seed_curves(rows)
    out = []
    for preset in study.presets:
        for task in study.downstream:
            panel = data.get((preset, task), {})
            zero = panel.get(Method.zero_shot())
            for method, points in panel.items():
                if method.kind is not MethodKind.FINETUNE:
                    continue
                s = data_saving(panel.get(Method.scratch(), []), points)
                if s is None:
                    continue
                per_seed = []
                for seed_data in by_seed.values():
                    seed_panel = seed_data.get((preset, task), {})
                    one = data_saving(
                        seed_panel.get(Method.scratch(), []), seed_panel.get(method, [])
                    )
                    if one is not None:
                        per_seed.append(one)
                zero_shot = None if zero is None else zero[0].error
                out.append(Headline(preset, task, method, zero_shot, s, saving_interval(per_seed)))
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
    """One :class:`Forgetting` per (preset, task, strategy, n) of the selected fine-tuned (or
    physics-informed) rows tested on the pre-training tasks, errors averaged over seeds (the
    score is of the averages), by preset, task, n and strategy."""
    zero = defaultdict(list)
    tuned = defaultdict(list)
    for r in rows:
        if r.retained_rel_l2 is None or r.test_rel_l2 is None:
            continue
        if r.method.kind is MethodKind.ZERO_SHOT:
            zero[(r.preset, r.task)].append(r)
        elif r.method.kind in (MethodKind.FINETUNE, MethodKind.PHYSICS) and r.selected:
            strategy = r.method.strategy or r.method.slug  # "physics" for physics-informed
            tuned[(r.preset, r.task, strategy, r.n)].append(r)

    def mean(runs, attribute):
        return float(np.mean([getattr(r, attribute) for r in runs]))

    out = []
    for (preset, task, strategy, n), runs in tuned.items():
        z = zero.get((preset, task))
        ds, kept = mean(runs, "test_rel_l2"), mean(runs, "retained_rel_l2")
        out.append(
            Forgetting(
                preset=preset,
                task=task,
                strategy=strategy,
                n=n,
                downstream=ds,
                retained=kept,
                downstream_change=None if not z else ds - mean(z, "test_rel_l2"),
                retained_change=None if not z else kept - mean(z, "retained_rel_l2"),
                score=harmonic_score(ds, kept),
            )
        )
    return sorted(out, key=lambda f: (f.preset, f.task, f.n, f.strategy))
