"""Experiments: typed study configurations, sweeps over them, and their reports."""

from scifm.experiments._config import METHODS, Pretrain, Study, Task, builtin_studies, load_study
from scifm.experiments._demo import run_demo
from scifm.experiments._report import (
    data_saving,
    forgetting,
    format_saving,
    harmonic_score,
    headline,
    read_csv,
    rows_from_points,
)
from scifm.experiments._sweep import EXECUTORS, Point, execute, plan, prepare, run_point, sweep

__all__ = [
    "EXECUTORS",
    "METHODS",
    "Point",
    "Pretrain",
    "Study",
    "Task",
    "builtin_studies",
    "data_saving",
    "execute",
    "forgetting",
    "format_saving",
    "harmonic_score",
    "headline",
    "load_study",
    "plan",
    "prepare",
    "read_csv",
    "rows_from_points",
    "run_demo",
    "run_point",
    "sweep",
]
