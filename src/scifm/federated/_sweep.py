"""Running a whole federated study: data, every run in turn, results and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scifm._progress import Display, NoProgress, RunBar
from scifm.federated._config import FederatedStudy
from scifm.federated._report import write_report
from scifm.federated._study import plan, prepare, result_rows, run_one, write_results


def _mean(test: dict) -> float:
    """The mean of a result's test errors (FCCL+ nests them per client)."""
    return float(np.mean([_mean(v) if isinstance(v, dict) else v for v in test.values()]))


def run_study(study: FederatedStudy, out: str | Path, *, progress: bool = True) -> Path:
    """Run every run of ``study`` into ``out`` (resumable) and write results and report.

    Returns:
        The path of report.md (beside results.csv and the plots).

    Raises:
        ValueError: :class:`scifm.RunConflict` when ``out`` holds another study.
    """
    display = Display(progress)
    try:
        data_bar = display.bar("data", sum(study.data_files().values()), unit="samples")
        out = prepare(study, out, progress=data_bar)
        runs = plan(study)
        runs_bar = display.bar("runs", len(runs))
        finished = []
        for run in runs:
            bar = RunBar(display, run.label) if progress else NoProgress()
            result = run_one(study, out, run, bar)
            finished.append((run, result))
            runs_bar.update(advance=1, info=f"last: {run.name}, error {_mean(result['test']):.3g}")
    finally:
        display.close()
    write_results(result_rows(study, finished), out / "results.csv")
    return write_report(study, out, finished)
