"""Run a transfer study: its datasets, pre-training, and every downstream point, resumably.

A sweep directory holds::

    study.json                 the resolved study (a rerun must match it)
    data/<task>-<split>.h5     every dataset (splits: pretrain, train, val, test)
    runs/pretrain/<preset>/    a scifm training run each (config.json, checkpoint.eqx, ...)
    runs/<preset>/<task>/scratch/n0008-lr0.001/
    runs/<preset>/<task>/finetune-<strategy>/n0008-lr0.001/
    results.csv, report.md, *.png

A point is finished when its ``point.json`` exists (its test errors, written last); a rerun
skips finished points and resumes unfinished runs from their saved state. Points run inline,
in local processes (``jobs``), or as submitit jobs on SLURM (``executor="slurm"``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from scifm import data
from scifm.experiments._config import Study
from scifm.train import _checkpoint

EXECUTORS = ("local", "slurm", "submitit-local")
# keys a rerun may change in an existing sweep: they only add or drop points, each of which
# has its own directory (n_values may not grow beyond the downstream training sets)
EXTENSIBLE = ("name", "presets", "n_values", "methods", "strategies", "lr_grid")


@dataclass(frozen=True)
class Point:
    """One run of a study: pre-training a preset, or one downstream (method, task, n, lr)."""

    kind: str  # "pretrain", "scratch" or "finetune"
    preset: str
    task: str = ""
    n: int = 0
    lr: float = 0.0
    strategy: str = "full"  # what fine-tuning uses; pre-training and scratch train all weights

    @property
    def directory(self) -> str:
        if self.kind == "pretrain":
            return f"runs/pretrain/{self.preset}"
        method = "scratch" if self.kind == "scratch" else f"finetune-{self.strategy}"
        return f"runs/{self.preset}/{self.task}/{method}/n{self.n:05d}-lr{self.lr:g}"

    def describe(self) -> str:
        if self.kind == "pretrain":
            return f"pre-train {self.preset}"
        method = "scratch" if self.kind == "scratch" else f"fine-tune ({self.strategy})"
        return f"{self.preset} {self.task} {method} n={self.n} lr={self.lr:g}"


def plan(study: Study) -> tuple[list[Point], list[Point]]:
    """The study's points in two stages: what needs nothing (pre-training, scratch), then
    what needs a pre-trained model (fine-tuning)."""
    first, second = [], []
    pretrained = "finetune" in study.methods or "zero-shot" in study.methods
    for preset in study.presets:
        if pretrained:
            first.append(Point("pretrain", preset))
        for task in study.downstream:
            for n in study.n_values:
                for lr in study.lr_grid:
                    if "scratch" in study.methods:
                        first.append(Point("scratch", preset, task, n, lr))
                    if "finetune" in study.methods:
                        second.extend(
                            Point("finetune", preset, task, n, lr, s) for s in study.strategies
                        )
    return first, second


def data_path(sweep: Path, task: str, split: str) -> Path:
    return sweep / "data" / f"{task}-{split}.h5"


def prepare(study: Study, sweep: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Create (or reopen) the sweep directory and generate the datasets it lacks.

    Reopening with a study that differs only in :data:`EXTENSIBLE` keys (more strategies, a
    wider learning-rate grid, another preset, ...) extends the sweep: finished points are
    kept, and ``study.json`` becomes the new study.

    Raises:
        ValueError: ``sweep`` holds another study, or is a non-empty directory of something else.
    """
    sweep = Path(sweep)
    saved = sweep / "study.json"
    if saved.exists():
        old = json.loads(saved.read_text())
        new = study.to_dict()
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        fixed = [k for k in keys if k not in EXTENSIBLE]
        if fixed:
            raise ValueError(
                f"{sweep} holds another study (differs in {', '.join(fixed)}); choose another --out"
            )
        if max(study.n_values) > max(old["n_values"]):
            raise ValueError(
                f"{sweep} has downstream training sets of {max(old['n_values'])} samples; "
                f"n_values up to {max(study.n_values)} need another --out"
            )
        if keys:  # a grid extended (or narrowed): finished points are kept, new ones run
            _checkpoint.atomic_write_text(saved, json.dumps(new, indent=2) + "\n")
    elif sweep.exists() and any(sweep.iterdir()):
        raise ValueError(f"{sweep} exists and is not a scifm sweep; choose another --out")
    else:
        sweep.mkdir(parents=True, exist_ok=True)
        _checkpoint.atomic_write_text(saved, json.dumps(study.to_dict(), indent=2) + "\n")
    (sweep / "data").mkdir(exist_ok=True)
    for (task, split), n in study.data_files().items():
        path = data_path(sweep, task, split)
        if path.exists():
            if progress is not None:
                progress(n)
            continue
        system = study.tasks[task].build()
        data.generate(
            system, n, study.resolution, study.data_seed(task, split), path, progress=progress
        )
    return sweep


def _evaluate_on(model, sweep: Path, study: Study, tasks: Sequence[str]) -> dict:
    from scifm.train import evaluate

    out = {}
    for task in tasks:
        fields = data.FieldSet.load(data_path(sweep, task, "test"))
        out[task] = evaluate(model, fields)
    return out


def run_point(sweep: str | Path, point: dict, progress=False) -> dict:
    """Run one point of the sweep in ``sweep`` (prepared); write and return its ``point.json``.

    Top-level and given plain arguments, so local processes and submitit can call it. A point
    whose training diverges is recorded as such (its learning rate loses the selection).
    """
    from scifm.train import TrainingDiverged, fit, get_strategy, load, start_model

    sweep = Path(sweep)
    study = Study.from_dict(json.loads((sweep / "study.json").read_text()))
    p = Point(**point)
    run = sweep / p.directory
    done = run / "point.json"
    finished = _finished(sweep, p)
    if finished is not None:
        return finished
    if p.kind == "pretrain":
        pre = study.pretrain
        train = data.FieldSet.concatenate(
            [data.FieldSet.load(data_path(sweep, t, "pretrain")) for t in pre.tasks]
        )
        val = data.FieldSet.concatenate(
            [data.FieldSet.load(data_path(sweep, t, "val"), limit=pre.n_val) for t in pre.tasks]
        )
        epochs, batch_size, lr = pre.epochs, pre.batch_size, pre.lr
        validate_every = 1
        model, _ = start_model(train, preset=p.preset, seed=study.seed)
        evaluate_on = list(dict.fromkeys([*pre.tasks, *study.downstream]))
    else:
        train = data.FieldSet.load(data_path(sweep, p.task, "train"), limit=p.n)
        val = data.FieldSet.load(data_path(sweep, p.task, "val"), limit=study.n_val)
        batch_size, lr = study.batch_size, p.lr
        steps_per_epoch = max(1, p.n // min(batch_size, p.n))
        epochs = math.ceil(study.steps / steps_per_epoch)
        validate_every = max(1, epochs // study.validations)
        init = None
        evaluate_on = [p.task]
        if p.kind == "finetune":
            pretrain = Point("pretrain", p.preset)
            init, pretrained = sweep / pretrain.directory, _finished(sweep, pretrain)
            if pretrained is None:
                raise RuntimeError(f"{p.describe()}: the pre-trained model {init} is not finished")
            if pretrained["status"] != "ok":
                raise RuntimeError(
                    f"{p.describe()}: pre-training {init} diverged; lower pretrain.lr in a new sweep"
                )
            evaluate_on = [p.task, *study.pretrain.tasks]  # forgetting: the pre-training tasks too
        model, _ = start_model(train, preset=p.preset, init=init, seed=study.seed)
    result = {"point": dataclasses.asdict(p), "status": "ok"}
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
                loss=study.loss,
                strategy=get_strategy(p.strategy),  # "full" for pre-training and scratch
                seed=study.seed,
                validate_every=validate_every,
                metadata={
                    "model": {"preset": p.preset},
                    "study": study.name,
                    "point": result["point"],
                },
                progress=progress,
            )
        fitted = json.loads((run / "result.json").read_text())
        best, _ = load(run)
        result.update(
            val_rel_l2=fitted["best_val_rel_l2"],
            steps=fitted["steps"],
            train_seconds=fitted["train_seconds"],
            parameters=fitted["parameters"],
            test=_evaluate_on(best, sweep, study, evaluate_on),
        )
    except TrainingDiverged as e:
        result.update(status="diverged", message=str(e), val_rel_l2=math.inf, test={})
    result["seconds"] = time.perf_counter() - start
    run.mkdir(parents=True, exist_ok=True)
    _checkpoint.atomic_write_text(done, json.dumps(result, indent=2))
    return result


def _finished(sweep: Path, p: Point) -> dict | None:
    """The ``point.json`` of a finished point, else None."""
    path = sweep / p.directory / "point.json"
    return json.loads(path.read_text()) if path.exists() else None


def _check_executor(executor: str, jobs: int) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")


def execute(
    sweep: Path,
    points: Sequence[Point],
    *,
    executor: str = "local",
    jobs: int = 1,
    slurm: dict | None = None,
    on_done: Callable[[Point, dict], None] = lambda p, r: None,
    run_progress: Callable[[Point], object] | None = None,
) -> None:
    """Run ``points`` (independent of each other) and call ``on_done`` as each finishes.

    ``executor``: "local" (inline when ``jobs == 1``, else that many spawned processes),
    "slurm" (submitit jobs; ``slurm`` holds submitit's parameters, e.g. ``slurm_partition``,
    ``gpus_per_node``, ``timeout_min``), or "submitit-local" (submitit's local executor: the
    SLURM path run on this machine, for testing). ``run_progress(point)``, inline only, gives
    the ``progress`` argument of that point's :func:`scifm.train.fit`.

    Raises:
        RuntimeError: some points failed (after the others ran); it names them.
    """
    _check_executor(executor, jobs)
    todo = []
    for p in points:
        done = _finished(sweep, p)
        if done is None:
            todo.append(p)
        else:
            on_done(p, done)
    failed = []
    if executor == "local" and jobs == 1:
        for p in todo:
            progress = run_progress(p) if run_progress is not None else False
            on_done(p, run_point(sweep, dataclasses.asdict(p), progress=progress))
    elif executor == "local":
        context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {pool.submit(run_point, str(sweep), dataclasses.asdict(p)): p for p in todo}
            for future in as_completed(futures):
                try:
                    on_done(futures[future], future.result())
                except Exception as e:  # noqa: BLE001 - reported with the point below
                    failed.append(f"{futures[future].describe()}: {type(e).__name__}: {e}")
    else:
        try:
            import submitit
        except ImportError:  # pragma: no cover - declared dependency
            raise ImportError("the slurm executor needs submitit: pip install submitit") from None
        folder = sweep / "submitit"
        if executor == "slurm":
            ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
            ex.update_parameters(**(slurm or {}))
        else:
            ex = submitit.LocalExecutor(folder=folder)
            ex.update_parameters(timeout_min=int((slurm or {}).get("timeout_min", 60)))
        submitted = [(p, ex.submit(run_point, str(sweep), dataclasses.asdict(p))) for p in todo]
        for p, job in submitted:
            try:
                on_done(p, job.result())
            except Exception as e:  # noqa: BLE001 - reported with the point below
                failed.append(f"{p.describe()}: {type(e).__name__}: {str(e).splitlines()[-1:]}")
    if failed:
        raise RuntimeError(f"{len(failed)} point(s) failed: " + "; ".join(failed))


def sweep(
    study: Study,
    out: str | Path,
    *,
    executor: str = "local",
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Run ``study`` into the sweep directory ``out`` (see the module docstring); resumable.

    Returns:
        The path of report.md (beside results.csv and the plots).

    Raises:
        ValueError: bad executor/jobs, or ``out`` holds another study.
        RuntimeError: points failed (the finished ones are kept; a rerun retries the rest).
    """
    from scifm.experiments._report import rows_from_points, write_report

    _check_executor(executor, jobs)  # before any data is generated
    from scifm._progress import Display, TrainingBar

    start = time.perf_counter()
    display = Display(progress)
    try:
        data_bar = display.bar("data", sum(study.data_files().values()), unit="samples")
        sweep_dir = prepare(study, out, progress=data_bar)
        stages = plan(study)
        runs_bar = display.bar("runs", sum(len(s) for s in stages))
        finished: list[tuple[dict, dict]] = []

        def on_done(p: Point, result: dict) -> None:
            finished.append(({**dataclasses.asdict(p), "directory": p.directory}, result))
            val = result.get("val_rel_l2")
            runs_bar.update(advance=1, info=f"last: {p.describe()} val {val:.3g}" if val else "")

        def run_bar(p: Point):  # inline runs show their own steps
            return lambda total, done: TrainingBar(display.bar(p.describe(), total, done))

        for stage in stages:
            execute(
                sweep_dir,
                stage,
                executor=executor,
                jobs=jobs,
                slurm=study.slurm,
                on_done=on_done,
                run_progress=run_bar if progress else None,
            )
        rows = rows_from_points(study, finished)
    finally:
        display.close()
    return write_report(study, rows, sweep_dir, wall_seconds=time.perf_counter() - start)
