"""Where a sweep's points run: the one registry from executor names to executor objects.

:func:`scifm.experiments.execute` takes an executor *object*: anything with
``submit(fn, *args)`` returning a future with ``done()`` and ``result()`` (a
:class:`concurrent.futures.Executor`, or a submitit executor), or ``None`` to run inline in
this process. Names exist only here, for the command line and :func:`scifm.experiments.sweep`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scifm._checks import UserError


def _local(jobs: int, folder: Path, slurm: Mapping[str, Any]):
    if jobs == 1:
        return None  # inline: one run at a time, each showing its own progress
    # spawned, not forked: JAX is not fork-safe
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


def _submitit():
    try:
        import submitit
    except ImportError:  # pragma: no cover - declared dependency
        raise ImportError("the slurm executors need submitit: pip install submitit") from None
    return submitit


def _slurm(jobs: int, folder: Path, slurm: Mapping[str, Any]):
    submitit = _submitit()
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(**slurm)
    # no srun here (RuntimeError), or parameters submitit refuses (it raises all of these)
    except (RuntimeError, ValueError, NameError, AssertionError, TypeError) as e:
        lines = str(e).strip().splitlines()
        raise UserError(f"executor 'slurm': {lines[0] if lines else type(e).__name__}") from None
    return executor


def _submitit_local(jobs: int, folder: Path, slurm: Mapping[str, Any]):
    executor = _submitit().LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=int(slurm.get("timeout_min", 60)))
    return executor


EXECUTORS: dict[str, Callable[[int, Path, Mapping[str, Any]], Any]] = {
    "local": _local,  # inline when jobs == 1, else that many spawned processes
    "slurm": _slurm,  # submitit jobs on SLURM
    "submitit-local": _submitit_local,  # the SLURM path run on this machine, for testing
}


def make_executor(
    name: str, *, jobs: int = 1, folder: str | Path, slurm: Mapping[str, Any] | None = None
):
    """The executor called ``name``, for :func:`scifm.experiments.execute`.

    Args:
        name: "local" (inline when ``jobs == 1``: returns None; else a pool of ``jobs``
            spawned processes), "slurm" (submitit jobs; ``slurm`` holds submitit's parameters,
            e.g. ``slurm_partition``, ``gpus_per_node``, ``timeout_min``), or "submitit-local"
            (submitit's local executor: the SLURM path run on this machine).
        jobs: parallel local processes (only "local" uses it).
        folder: where submitit keeps its jobs' files (its local executor creates it at once).

    Returns:
        None (inline), a :class:`concurrent.futures.ProcessPoolExecutor` (the caller shuts it
        down), or a submitit executor.

    Raises:
        ValueError: an unknown name (the valid ones are listed), ``jobs`` < 1, or for "slurm"
            no srun on this machine or parameters submitit refuses.
    """
    check_executor(name, jobs)
    return EXECUTORS[name](jobs, Path(folder), slurm or {})


def check_executor(name: str, jobs: int = 1, slurm: Mapping[str, Any] | None = None) -> None:
    """Raise the ValueError of :func:`make_executor` (a bad name or ``jobs``; for "slurm", no
    srun on this machine or parameters submitit refuses); create nothing."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    if not (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        raise UserError(f"jobs must be a positive integer, got {jobs!r}")
    if name == "slurm":
        # submitit's SLURM executor writes nothing until a job is submitted: made and dropped
        # here, it checks srun and the parameters by submitit's own rules
        _slurm(jobs, Path("submitit"), slurm or {})


@dataclass
class Call:
    """One independent piece of a study: ``fn(*args)`` (picklable, for processes and SLURM),
    named ``label`` in errors. ``progress``, for a call run in this process only: made just
    before it runs and passed as ``fn(*args, progress=progress())`` (its own progress bar)."""

    label: str
    fn: Callable
    args: tuple = ()
    progress: Callable[[], Any] | None = None


def run_calls(
    executor, calls: Sequence[Call], on_done: Callable[[Call, Any], None] = lambda c, r: None
) -> None:
    """Run ``calls`` and call ``on_done(call, result)`` as each finishes.

    ``executor``: None runs them one after another in this process (a failing call raises its
    own error); else anything with ``submit(fn, *args)`` returning a future with ``done()`` and
    ``result()`` (:func:`make_executor`'s): all are submitted at once.

    Raises:
        RuntimeError: with an executor, some calls failed (after the others ran); it names
            them by label and the last line of their error.
    """
    if executor is None:
        for call in calls:
            extra = {} if call.progress is None else {"progress": call.progress()}
            on_done(call, call.fn(*call.args, **extra))
        return
    futures = {executor.submit(call.fn, *call.args): call for call in calls}
    failed = []
    for future in _as_completed(futures):
        call = futures[future]
        try:
            on_done(call, future.result())
        except Exception as e:  # noqa: BLE001 - reported with the call below
            failed.append(f"{call.label}: {type(e).__name__}: {_last_line(e)}")
    if failed:
        raise RuntimeError(f"{len(failed)} point(s) failed: " + "; ".join(failed))


def _as_completed(futures: Iterable, poll_seconds: float = 0.2) -> Iterator:
    """``futures`` as they finish: concurrent.futures' and submitit's alike (both ``done()``)."""
    pending = list(futures)
    while pending:
        ready = [f for f in pending if f.done()]
        if not ready:
            time.sleep(poll_seconds)
        for f in ready:
            pending.remove(f)
            yield f


def _last_line(e: Exception) -> str:
    """The last line of an error's message: a submitit failure carries the job's traceback."""
    lines = str(e).strip().splitlines()
    return lines[-1] if lines else ""
