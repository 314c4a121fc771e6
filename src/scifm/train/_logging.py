"""Optional copies of a run's metrics for the tools people watch runs in: TensorBoard event
files and a local MLflow store (SQLite, no server, no network). Off by default; the ``log``
extra installs them (``pip install scifm[log]``).

``metrics.jsonl`` stays the record the run resumes from and the reports read; a logger is
shown each of its rows as it is written (every number in it, at the row's optimiser step).
A resumed run shows the loggers the validations it redoes again, at the same steps.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from scifm._checks import UserError

KINDS = ("tensorboard", "mlflow")
EXTRA = "pip install 'scifm[log]'"


class RunLogger(Protocol):
    """Shown each metrics row (a dict with ``step``) of a run; closed when the run ends."""

    def log(self, row: dict) -> None: ...

    def close(self) -> None: ...


def _numbers(row: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k not in ("step", "epoch")
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


class TensorBoard:
    """Scalars in TensorBoard event files under ``logdir`` (``tensorboard --logdir``)."""

    def __init__(self, logdir: str | os.PathLike):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise UserError(f"--log tensorboard needs tensorboardX: {EXTRA}") from None
        self.logdir = Path(logdir)
        self._writer = SummaryWriter(str(self.logdir))

    def log(self, row: dict) -> None:
        for key, value in _numbers(row).items():
            self._writer.add_scalar(key, value, global_step=int(row["step"]))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class MLflow:
    """A run in a local MLflow store: ``store/mlflow.db`` (SQLite) and ``store/artifacts``,
    in the experiment ``experiment``, with the run's configuration as parameters; ``mlflow ui
    --backend-store-uri sqlite:///STORE/mlflow.db`` shows it."""

    def __init__(
        self, store: str | os.PathLike, run_name: str, params: dict, experiment: str = "scifm"
    ):
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UserError(f"--log mlflow needs mlflow-skinny and sqlalchemy: {EXTRA}") from None
        self.store = Path(store).resolve()
        self.store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=f"sqlite:///{self.store / 'mlflow.db'}")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(
                experiment, artifact_location=(self.store / "artifacts").as_uri()
            )
        )
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        flat = [Param(k, str(v)[:500]) for k, v in _flatten(params).items()]
        for lo in range(0, len(flat), 100):
            self.client.log_batch(self.run_id, params=flat[lo : lo + 100])

    def log(self, row: dict) -> None:
        from mlflow.entities import Metric

        step, now = int(row["step"]), _millis()
        metrics = [Metric(k, v, now, step) for k, v in _numbers(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _millis() -> int:
    import time

    return int(time.time() * 1000)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_loggers(specs: Sequence[str]) -> None:
    """Refuse, in one line and before a run starts, a ``--log`` value that names no logger or
    one whose package is not installed."""
    for spec in specs:
        kind = spec.partition(":")[0]
        if kind not in KINDS:
            raise UserError(
                f"--log {spec!r}: the loggers are tensorboard[:DIR] and mlflow[:STORE] "
                "(TensorBoard event files, a local MLflow store)"
            )
        module = {"tensorboard": "tensorboardX", "mlflow": "mlflow"}[kind]
        if importlib.util.find_spec(module) is None:
            raise UserError(f"--log {kind} needs {module}, which is not installed: {EXTRA}")


def make_loggers(specs: Sequence[str], run: str | os.PathLike, params: dict) -> list[RunLogger]:
    """Loggers from ``--log`` values: ``tensorboard[:DIR]`` (default ``RUN/tensorboard``),
    ``mlflow[:STORE]`` (default ``./mlruns``, MLflow's own); ``params`` (the run's
    configuration) become the MLflow run's parameters."""
    check_loggers(specs)
    run = Path(run)
    out: list[RunLogger] = []
    try:
        for spec in specs:
            kind, _, where = spec.partition(":")
            if kind == "tensorboard":
                out.append(TensorBoard(where or run / "tensorboard"))
            else:
                out.append(MLflow(where or "mlruns", run_name=run.name, params=params))
    except BaseException:
        for logger in out:
            logger.close()
        raise
    return out
