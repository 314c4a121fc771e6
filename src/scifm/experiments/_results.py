"""A study's results table: one typed :class:`Row` per (point, task), and results.csv.

Rows are built from the finished points (their ``point.json``); zero-shot rows come from
pre-training, which is tested on every downstream task. ``selected`` marks the learning rate
each (preset, task, method, n, seed) picks by validation error. results.csv holds one line per row,
in :data:`COLUMNS` order, then one ``retained_rel_l2[<task>]`` column per pre-training task; a
missing value is an empty cell. :func:`read_results` reads it back into equal rows.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from scifm._checks import UserError
from scifm._io import atomic_write_text
from scifm.experiments._config import Study
from scifm.experiments._points import Method, MethodKind, Point, PointKind, Status

COLUMNS = (
    "preset",
    "parameters",
    "task",
    "system",
    "shift",
    "method",
    "strategy",
    "n",
    "lr",
    "seed",
    "selected",
    "status",
    "val_rel_l2",
    "val_residual",
    "test_rel_l2",
    "test_rel_l2_std",
    "test_samples",
    "retained_rel_l2",
    "steps",
    "train_seconds",
    "seconds",
    "run",
)
RETAINED = "retained_rel_l2["  # the per-task retained error columns: retained_rel_l2[<task>]
OPTIONAL = ("val_residual", "seed")  # columns that tables written before them lack


@dataclass(frozen=True)
class Row:
    """One line of results.csv: a method's model at one (preset, task, n, lr); None is missing.

    ``retained_rel_l2`` is the mean test error over the pre-training tasks (fine-tuned and
    zero-shot rows): what the model still knows of them; ``retained`` holds it per task. A
    diverged run has no test errors and ``val_rel_l2 = inf``. ``val_residual`` is the physics
    residual on the validation inputs of a physics-informed row, which selects its learning
    rate (label-free); ``val_rel_l2`` is then only reported. ``seed`` is the replicate's
    training seed (None in tables from before seeds): each seed selects its own learning rate.
    """

    preset: str
    task: str
    system: str
    shift: str
    method: Method
    n: int  # downstream training examples; 0 for zero-shot
    lr: float
    status: Status
    run: str  # the run directory, relative to the sweep directory
    selected: bool = False
    seed: int | None = None
    parameters: int | None = None
    val_rel_l2: float | None = None
    val_residual: float | None = None
    test_rel_l2: float | None = None
    test_rel_l2_std: float | None = None
    test_samples: int | None = None
    retained_rel_l2: float | None = None
    retained: Mapping[str, float] = field(default_factory=dict, hash=False)
    steps: int | None = None
    train_seconds: float | None = None
    seconds: float | None = None


def rows_from_points(study: Study, points: Sequence[tuple[Point, dict]]) -> list[Row]:
    """The table of ``(point, point.json)`` pairs: selected, and sorted by preset, task,
    method, strategy, n and learning rate."""
    rows = []
    for point, result in points:
        test = result.get("test", {})
        retained = {t: test[t]["rel_l2_mean"] for t in study.pretrain.tasks if t in test}
        common = dict(
            preset=point.preset,
            parameters=result.get("parameters"),
            status=Status(result["status"]),
            steps=result.get("steps"),
            train_seconds=_round(result.get("train_seconds")),
            seconds=_round(result.get("seconds")),
            run=point.directory,
            seed=study.training_seed(point),
        )
        if point.kind is PointKind.PRETRAIN:
            if MethodKind.ZERO_SHOT not in study.methods:
                continue
            for task in study.downstream:
                if task in test:
                    rows.append(
                        Row(
                            **common,
                            **_task_columns(study, task),
                            method=Method.zero_shot(),
                            n=0,
                            lr=study.pretrain.lr,
                            **_test_columns(test[task]),
                            **_retained_columns(retained),
                        )
                    )
            continue
        rows.append(
            Row(
                **common,
                **_task_columns(study, point.task),
                method=point.method,
                n=point.n,
                lr=point.lr,
                val_rel_l2=result["val_rel_l2"],
                val_residual=result.get("val_residual"),
                **(_test_columns(test[point.task]) if point.task in test else {}),
                **(
                    _retained_columns(retained)
                    if point.kind in (PointKind.FINETUNE, PointKind.PHYSICS)
                    else {}
                ),
            )
        )
    return sorted(_select(rows), key=_order)


def _round(x) -> float | None:
    return None if x is None else round(float(x), 3)


def _task_columns(study: Study, task: str) -> dict:
    t = study.tasks[task]
    return {"task": task, "system": t.system, "shift": t.shift}


def _test_columns(summary: dict) -> dict:
    return {
        "test_rel_l2": summary["rel_l2_mean"],
        "test_rel_l2_std": summary["rel_l2_std"],
        "test_samples": summary["n"],
    }


def _retained_columns(retained: dict) -> dict:
    if not retained:
        return {}
    return {"retained_rel_l2": sum(retained.values()) / len(retained), "retained": retained}


def _validation_score(r: Row) -> float:
    """What selects a row: its validation error, or for a physics-informed row the residual
    on the validation inputs (no label used)."""
    if r.val_residual is not None:
        return r.val_residual
    return r.val_rel_l2 or 0.0  # zero-shot rows have none and are alone in their group


def _select(rows: list[Row]) -> list[Row]:
    """Mark, per (preset, task, method, n, seed), the finished row of least validation score."""
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r.preset, r.task, r.method, r.n, r.seed)].append(i)
    selected = set()
    for group in groups.values():
        ok = [
            i
            for i in group
            if rows[i].status is Status.OK and math.isfinite(_validation_score(rows[i]))
        ]
        if ok:
            selected.add(min(ok, key=lambda i: _validation_score(rows[i])))
    return [replace(r, selected=i in selected) for i, r in enumerate(rows)]


def _order(r: Row):
    return (r.preset, r.task, r.method.order, r.n, -1 if r.seed is None else r.seed, r.lr)


# -- results.csv -------------------------------------------------------------------------------------
def write_results(rows: Sequence[Row], path: str | os.PathLike) -> Path:
    """Write ``rows`` to the CSV file ``path`` atomically (floats to 6 significant digits)."""
    tasks = sorted({t for r in rows for t in r.retained}, key=_retained_column)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, *map(_retained_column, tasks)])
    for r in rows:
        cells = {
            "preset": r.preset,
            "parameters": r.parameters,
            "task": r.task,
            "system": r.system,
            "shift": r.shift,
            "method": r.method.kind.value,
            "strategy": r.method.strategy,
            "n": r.n,
            "lr": r.lr,
            "seed": r.seed,
            "selected": r.selected,
            "status": r.status.value,
            "val_rel_l2": r.val_rel_l2,
            "val_residual": r.val_residual,
            "test_rel_l2": r.test_rel_l2,
            "test_rel_l2_std": r.test_rel_l2_std,
            "test_samples": r.test_samples,
            "retained_rel_l2": r.retained_rel_l2,
            "steps": r.steps,
            "train_seconds": r.train_seconds,
            "seconds": r.seconds,
            "run": r.run,
        }
        writer.writerow(
            [_cell(cells[c]) for c in COLUMNS] + [_cell(r.retained.get(t)) for t in tasks]
        )
    return atomic_write_text(path, buffer.getvalue())


def _retained_column(task: str) -> str:
    return f"{RETAINED}{task}]"


def _cell(v) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def read_results(path: str | os.PathLike) -> list[Row]:
    """The rows of a results.csv written by :func:`write_results`.

    Raises:
        ValueError: the file lacks a column, or a cell is not of its column's type.
    """
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL]
        if missing:
            raise UserError(f"{path} is not a scifm results table (no column {missing[0]!r})")
        tasks = {
            c: c[len(RETAINED) : -1] for c in header if c.startswith(RETAINED) and c.endswith("]")
        }
        try:
            return [_parse(cells, tasks) for cells in reader]
        except ValueError as e:
            raise UserError(f"{path} line {reader.line_num}: {e}") from None


def _parse(cells: dict[str, str], tasks: dict[str, str]) -> Row:
    def value(column, kind):
        text = cells.get(column) or ""
        return None if text == "" else kind(text)

    if cells["selected"] not in ("True", "False"):
        raise UserError(f"selected must be True or False, got {cells['selected']!r}")
    return Row(
        preset=cells["preset"],
        task=cells["task"],
        system=cells["system"],
        shift=cells["shift"],
        method=Method(MethodKind(cells["method"]), cells["strategy"] or None),
        n=int(cells["n"]),
        lr=float(cells["lr"]),
        status=Status(cells["status"]),
        run=cells["run"],
        selected=cells["selected"] == "True",
        seed=value("seed", int),
        parameters=value("parameters", int),
        val_rel_l2=value("val_rel_l2", float),
        val_residual=value("val_residual", float),
        test_rel_l2=value("test_rel_l2", float),
        test_rel_l2_std=value("test_rel_l2_std", float),
        test_samples=value("test_samples", int),
        retained_rel_l2=value("retained_rel_l2", float),
        retained={t: float(cells[c]) for c, t in tasks.items() if cells[c] != ""},
        steps=value("steps", int),
        train_seconds=value("train_seconds", float),
        seconds=value("seconds", float),
    )
