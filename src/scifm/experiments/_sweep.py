"""Run a transfer study: its datasets, pre-training, and every downstream point, resumably.

A sweep directory holds::

    study.json                 the resolved study (a rerun must match it)
    data/<task>-<split>.h5     every dataset (splits: pretrain, train, val, test)
    runs/pretrain/<preset>/    a scifm training run each (config.json, checkpoint.eqx, ...)
    runs/<preset>/<task>/scratch/n0008-lr0.001/
    runs/<preset>/<task>/finetune-<strategy>/n0008-lr0.001/
    runs/<preset>/<task>/physics/n0000-lr0.001/   (n: how many inputs carry their solution)
    results.csv, report.md, *.png

A point is finished when its ``point.json`` exists (its test errors, written last); a rerun
skips finished points and resumes unfinished runs from their saved state. Points run inline,
in local processes, or as submitit jobs on SLURM: see :mod:`scifm.experiments._executors`.

A refused sweep (a bad study, executor or directory) creates nothing: everything that can be
checked is checked before ``study.json`` is written. A kill at any moment, rerun, ends with
the same results.csv and ``point.json`` files as an uninterrupted sweep (timings aside). A
corrupt ``study.json`` or ``point.json`` is a :class:`scifm.RunError` naming the file and
what to do.
"""

from __future__ import annotations

import functools
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import numpy as np

from scifm import data
from scifm._io import atomic_write_text
from scifm._progress import Display, NoProgress, RunBar, RunProgress
from scifm._runs import RunConflict, RunError, config_difference, read_json
from scifm.experiments._config import Study
from scifm.experiments._executors import Call, check_executor, make_executor, run_calls
from scifm.experiments._markdown import write_report
from scifm.experiments._points import MethodKind, Point, PointKind, Status
from scifm.experiments._results import rows_from_points
from scifm.models import adapt
from scifm.train import (
    DivergenceError,
    data_parallel,
    evaluate,
    fit,
    get_loss,
    get_strategy,
    load,
    physics_loss,
    plot_curves,
    start_model,
    unlabelled,
)

if TYPE_CHECKING:
    import submitit

# keys a rerun may change in an existing sweep: they only add or drop points, each of which
# has its own directory (n_values may not grow beyond the downstream training sets), or say
# where the points run (slurm)
EXTENSIBLE = ("name", "presets", "seeds", "n_values", "methods", "strategies", "lr_grid", "slurm")


def plan(study: Study) -> tuple[list[Point], list[Point]]:
    """The study's points in two stages: what needs nothing (pre-training, scratch), then
    what needs a pre-trained model (fine-tuning, physics-informed: also at n = 0)."""
    first, second = [], []
    pretrained = {MethodKind.FINETUNE, MethodKind.ZERO_SHOT, MethodKind.PHYSICS} & set(
        study.methods
    )
    for preset in study.presets:
        for seed in map(study.point_seed, study.run_seeds):
            if pretrained:
                first.append(Point(PointKind.PRETRAIN, preset, seed=seed))
            for task in study.downstream:
                if MethodKind.PHYSICS in study.methods:
                    second.extend(
                        Point(PointKind.PHYSICS, preset, task, 0, lr, seed=seed)
                        for lr in study.lr_grid
                    )
                for n in study.n_values:
                    for lr in study.lr_grid:
                        if MethodKind.SCRATCH in study.methods:
                            first.append(Point(PointKind.SCRATCH, preset, task, n, lr, seed=seed))
                        if MethodKind.FINETUNE in study.methods:
                            second.extend(
                                Point(PointKind.FINETUNE, preset, task, n, lr, s, seed)
                                for s in study.strategies
                            )
                        if MethodKind.PHYSICS in study.methods:
                            second.append(Point(PointKind.PHYSICS, preset, task, n, lr, seed=seed))
    return first, second


STUDY, POINT = "study.json", "point.json"


def data_path(sweep: Path, task: str, split: str) -> Path:
    return sweep / "data" / f"{task}-{split}.h5"


def _training_set_size(sweep: Path, study: Study) -> int | None:
    """The samples of the smallest downstream training set ``sweep`` holds (None: none yet)."""
    sizes = []
    for task in study.downstream:
        path = data_path(sweep, task, "train")
        if path.exists():
            with data.open(path) as ds:
                sizes.append(len(ds))
    return min(sizes, default=None)


def _saved_study(sweep: Path) -> Study:
    """The study of the prepared sweep ``sweep`` (its ``study.json``)."""
    path = sweep / STUDY
    todo = f"restore it or delete {sweep} to start over"
    saved = read_json(path, todo)
    try:
        return Study.from_dict(saved)
    except ValueError as e:
        raise RunError(f"{path} does not hold a valid study ({e}); {todo}") from None


def prepare(study: Study, sweep: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Create (or reopen) the sweep directory and generate the datasets it lacks.

    Reopening with a study that differs only in :data:`EXTENSIBLE` keys (more strategies, a
    wider learning-rate grid, another preset, ...) extends the sweep: finished points are
    kept, and ``study.json`` becomes the new study.

    Raises:
        RunConflict: ``sweep`` holds another study, training sets smaller than ``n_values``
            need, or is a file or a non-empty directory of something else. Nothing is written.
        RunError: ``sweep`` holds a corrupt ``study.json``.
    """
    sweep = Path(sweep)
    saved = sweep / STUDY
    if sweep.exists() and not sweep.is_dir():
        raise RunConflict(f"{sweep} is a file, not a sweep directory")
    if saved.exists():
        old = read_json(saved, f"restore it or delete {sweep} to start over")
        new = study.to_dict()
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        fixed = [k for k in keys if k not in EXTENSIBLE]
        if fixed:
            pick = lambda d: {k: d.get(k) for k in fixed}  # noqa: E731
            difference = "; ".join(config_difference(pick(old), pick(new)))
            try:
                Study.from_dict(old)
            except ValueError as e:  # saved by an older scifm that let it through
                raise RunConflict(
                    f"{sweep} holds another study ({difference}), itself one no sweep can run "
                    f"({e}); delete {sweep} to start over"
                ) from None
            raise RunConflict(f"{sweep} holds another study ({difference})")
        have = _training_set_size(sweep, study)
        if have is not None and max(study.n_values) > have:
            raise RunConflict(
                f"{sweep} has downstream training sets of {have} samples; n_values up to "
                f"{max(study.n_values)} need a new sweep directory"
            )
        if keys:  # a grid extended (or narrowed): finished points are kept, new ones run
            atomic_write_text(saved, json.dumps(new, indent=2) + "\n")
    elif sweep.exists() and any(sweep.iterdir()):
        raise RunConflict(f"{sweep} exists and is not a scifm sweep")
    else:  # the study was checked when it was made: nothing below refuses it
        sweep.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps(study.to_dict(), indent=2) + "\n")
    (sweep / "data").mkdir(exist_ok=True)
    for (task, split), n in study.data_files().items():
        path = data_path(sweep, task, split)
        if path.exists():
            if progress is not None:
                progress(n)
            continue
        system = study.tasks[task].build()
        data.generate(
            system,
            n,
            study.task_resolution(task),
            study.data_seed(task, split),
            path,
            progress=progress,
        )
    return sweep


def _evaluate_on(model, sweep: Path, study: Study, tasks: Sequence[str]) -> dict:
    """Test errors of ``model`` per task. A task of other input channels (a coefficient field
    the model never read) is scored through the adapter at its start, which is the model
    reading the channels they share (:func:`scifm.models.adapt`); a task with outputs the model
    does not predict has no zero-shot error and is left out."""
    out = {}
    for task in tasks:
        fields = data.FieldSet.load(data_path(sweep, task, "test"))
        if (model.input_names, model.output_names) != (fields.input_names, fields.output_names):
            if set(fields.output_names) - set(model.output_names):
                continue
            out[task] = evaluate(adapt(model, fields, key=jax.random.key(0)), fields)
            continue
        out[task] = evaluate(model, fields)
    return out


def run_point(sweep: str | Path, point: dict, progress: RunProgress | None = None) -> dict:
    """Run one point of the sweep in ``sweep`` (prepared); write and return its ``point.json``.

    Top-level and given plain arguments (``point`` is :meth:`Point.to_dict`), so local
    processes and submitit can call it. A point whose training diverges is recorded as such
    (status "diverged": its learning rate loses the selection). ``progress`` is shown the
    run's steps (default: nothing shown).
    """
    progress = NoProgress() if progress is None else progress
    sweep = Path(sweep)
    study = _saved_study(sweep)
    p = Point(**point)
    run = sweep / p.directory
    done = run / POINT
    finished = _finished(sweep, p)
    if finished is not None:
        return finished
    seed = study.training_seed(p)
    if p.kind is PointKind.PRETRAIN:
        pre = study.pretrain
        train = data.FieldSet.concatenate(
            [data.FieldSet.load(data_path(sweep, t, "pretrain")) for t in pre.tasks]
        )
        val = data.FieldSet.concatenate(
            [data.FieldSet.load(data_path(sweep, t, "val"), limit=pre.n_val) for t in pre.tasks]
        )
        epochs, batch_size, lr = pre.epochs, pre.batch_size, pre.lr
        validate_every = 1
        model, _ = start_model(train, preset=p.preset, seed=seed)
        evaluate_on = list(dict.fromkeys([*pre.tasks, *study.downstream]))
    else:
        loss = get_loss(study.loss)
        train = _training_examples(sweep, p)
        if p.kind is PointKind.PHYSICS:
            loss = physics_loss(study.tasks[p.task].system)
        val = data.FieldSet.load(data_path(sweep, p.task, "val"), limit=study.n_val)
        batch_size, lr = study.batch_size, p.lr
        steps_per_epoch = max(1, len(train) // min(batch_size, len(train)))
        epochs = math.ceil(study.steps / steps_per_epoch)
        validate_every = max(1, epochs // study.validations)
        init = None
        evaluate_on = [p.task]
        if p.kind in (PointKind.FINETUNE, PointKind.PHYSICS):
            pretrain = Point(PointKind.PRETRAIN, p.preset, seed=p.seed)
            init, pretrained = sweep / pretrain.directory, _finished(sweep, pretrain)
            if pretrained is None:
                raise RuntimeError(f"{p.describe()}: the pre-trained model {init} is not finished")
            if Status(pretrained["status"]) is not Status.OK:
                raise RuntimeError(
                    f"{p.describe()}: pre-training {init} diverged; lower pretrain.lr in a new sweep"
                )
            evaluate_on = [p.task, *study.pretrain.tasks]  # forgetting: the pre-training tasks too
        # a task of other channels (Darcy's coefficient field) is reached through an adapter
        model, _ = start_model(
            train, preset=p.preset, init=init, seed=seed, adapter=init is not None
        )
    result = {"point": p.to_dict(), "status": Status.OK.value}
    start = time.perf_counter()
    try:
        if not (run / "result.json").exists():
            fit(
                model,
                train,
                val,
                run,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                loss=get_loss(study.loss) if p.kind is PointKind.PRETRAIN else loss,
                strategy=get_strategy(p.strategy),  # "full" for pre-training and scratch
                seed=seed,
                validate_every=validate_every,
                metadata={
                    "model": {"preset": p.preset},
                    "study": study.name,
                    "point": result["point"],
                },
                sharding=data_parallel(),
                progress=progress,
            )
        plot_curves(run)  # also when a kill came between the run's result and point.json
        fitted = read_json(run / "result.json", f"delete {run} to train that point again")
        best, _ = load(run)
        result.update(
            val_rel_l2=fitted["best_val_rel_l2"],
            **(
                {"val_residual": fitted["best_val_residual"]}
                if "best_val_residual" in fitted
                else {}
            ),
            steps=fitted["steps"],
            train_seconds=fitted["train_seconds"],
            parameters=fitted["parameters"],
            test=_evaluate_on(best, sweep, study, evaluate_on),
        )
    except DivergenceError as e:
        result.update(status=Status.DIVERGED.value, message=str(e), val_rel_l2=math.inf, test={})
    result["seconds"] = time.perf_counter() - start
    run.mkdir(parents=True, exist_ok=True)
    # json.dumps, not atomic_write_json: a diverged point's val_rel_l2 is Infinity
    atomic_write_text(done, json.dumps(result, indent=2))
    return result


def _training_examples(sweep: Path, p: Point) -> data.FieldSet:
    """A downstream point's training set: its task's first ``n`` examples for the study's
    seed, else the first ``n`` of a permutation drawn from the replicate's seed and the task
    (nested: a replicate's larger ``n`` contain its smaller). A physics point takes every
    input in that order, the first ``n`` with their solutions."""
    path = data_path(sweep, p.task, "train")
    if p.seed is None and p.kind is not PointKind.PHYSICS:
        return data.FieldSet.load(path, limit=p.n)
    fields = data.FieldSet.load(path)
    if p.seed is not None:
        rng = np.random.default_rng([p.seed, zlib.crc32(p.task.encode())])
        order = rng.permutation(len(fields))
        fields = fields.subset(order if p.kind is PointKind.PHYSICS else order[: p.n])
    return unlabelled(fields, p.n) if p.kind is PointKind.PHYSICS else fields


def _finished(sweep: Path, p: Point) -> dict | None:
    """The ``point.json`` of a finished point, else None.

    Raises:
        RunError: the file is corrupt (it says to delete it: the rerun redoes the point).
    """
    path = sweep / p.directory / POINT
    if not path.exists():
        return None
    todo = "delete it and rerun the sweep to redo that point"
    result = read_json(path, todo)
    if result.get("status") not in {s.value for s in Status}:
        raise RunError(f"{path} holds no point status (a corrupt file); {todo}")
    return result


def execute(
    sweep: Path,
    points: Sequence[Point],
    *,
    executor: Executor | submitit.Executor | None = None,
    on_done: Callable[[Point, dict], None] = lambda p, r: None,
    run_progress: Callable[[Point], RunProgress] | None = None,
) -> None:
    """Run ``points`` (independent of each other) and call ``on_done`` as each finishes.

    Args:
        sweep: the prepared sweep directory.
        points: points whose ``point.json`` exists are not run again (``on_done`` still sees
            them).
        executor: None runs the points one after another in this process; else anything with
            ``submit(fn, *args)`` returning a future with ``done()`` and ``result()``: a
            :class:`concurrent.futures.Executor` (spawned processes: JAX is not fork-safe) or
            a submitit executor (:func:`make_executor` makes them from their names).
        run_progress: inline only: ``run_progress(point)`` is shown that point's training.

    Raises:
        RuntimeError: with an executor, some points failed (after the others ran); it names
            them. Inline, a failing point raises its own error.
    """
    todo = []
    for p in points:
        done = _finished(sweep, p)
        if done is None:
            todo.append(p)
        else:
            on_done(p, done)
    calls = [
        Call(p.describe(), run_point, (str(sweep), p.to_dict()),
             progress=None if run_progress is None else functools.partial(run_progress, p))
        for p in todo
    ]  # fmt: skip
    by_call = {id(c): p for c, p in zip(calls, todo, strict=True)}
    run_calls(executor, calls, lambda c, result: on_done(by_call[id(c)], result))


def sweep(
    study: Study,
    out: str | Path,
    *,
    executor: str = "local",
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Run ``study`` into the sweep directory ``out`` (see the module docstring); resumable.

    Args:
        executor, jobs: where the points run, by name (see :func:`make_executor`): "local"
            (inline with ``jobs=1``, else ``jobs`` processes), "slurm" or "submitit-local"
            (submitit, with the study's ``slurm`` parameters; its files in ``out/submitit``).
        progress: show progress bars (data, runs, and each inline run's steps).

    Returns:
        The path of report.md (beside results.csv and the plots).

    Raises:
        ValueError: bad executor/jobs (nothing is created); :class:`scifm.RunConflict` (a
            ValueError) when ``out`` holds another study; :class:`scifm.RunError` when a
            ``study.json`` or ``point.json`` there is corrupt.
        RuntimeError: points failed (the finished ones are kept; a rerun retries the rest).
    """
    check_executor(executor, jobs, study.slurm)  # before anything is created
    start = time.perf_counter()
    display = Display(progress)
    pool = None
    try:
        data_bar = display.bar("data", sum(study.data_files().values()), unit="samples")
        sweep_dir = prepare(study, out, progress=data_bar)
        # after prepare: submitit's folder inside a new sweep directory would make it foreign
        pool = make_executor(executor, jobs=jobs, folder=sweep_dir / "submitit", slurm=study.slurm)
        stages = plan(study)
        runs_bar = display.bar("runs", sum(len(s) for s in stages))
        finished: list[tuple[Point, dict]] = []

        def on_done(p: Point, result: dict) -> None:
            finished.append((p, result))
            val = result.get("val_rel_l2")
            runs_bar.update(advance=1, info=f"last: {p.describe()} val {val:.3g}" if val else "")

        def run_bar(p: Point) -> RunBar:  # inline runs show their own steps
            return RunBar(display, p.describe())

        for stage in stages:  # fine-tuning waits for pre-training
            execute(
                sweep_dir,
                stage,
                executor=pool,
                on_done=on_done,
                run_progress=run_bar if progress else None,
            )
        rows = rows_from_points(study, finished)
    finally:
        display.close()
        if isinstance(pool, Executor):
            pool.shutdown()
    return write_report(study, rows, sweep_dir, wall_seconds=time.perf_counter() - start)
