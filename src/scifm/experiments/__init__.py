"""Experiments: typed study configurations, sweeps over them, their results and reports.

from scifm import experiments
study = experiments.load_study("demo", ["steps=100"])
report = experiments.sweep(study, "sweeps/quick")        # -> sweeps/quick/report.md
rows = experiments.read_results("sweeps/quick/results.csv")
for h in experiments.headline(study, rows):
    print(h.task, h.method.label, *h.saving.text())
"""

from scifm.experiments._analysis import CurvePoint as CurvePoint
from scifm.experiments._analysis import DataSaving as DataSaving
from scifm.experiments._analysis import Forgetting as Forgetting
from scifm.experiments._analysis import Headline as Headline
from scifm.experiments._analysis import Interval as Interval
from scifm.experiments._analysis import SavingInterval as SavingInterval
from scifm.experiments._analysis import curves as curves
from scifm.experiments._analysis import data_saving as data_saving
from scifm.experiments._analysis import forgetting as forgetting
from scifm.experiments._analysis import harmonic_score as harmonic_score
from scifm.experiments._analysis import headline as headline
from scifm.experiments._analysis import interval as interval
from scifm.experiments._analysis import saving_interval as saving_interval
from scifm.experiments._analysis import seed_curves as seed_curves
from scifm.experiments._config import METHODS as METHODS
from scifm.experiments._config import Pretrain as Pretrain
from scifm.experiments._config import Study as Study
from scifm.experiments._config import Task as Task
from scifm.experiments._config import builtin_studies as builtin_studies
from scifm.experiments._config import load_study as load_study
from scifm.experiments._demo import run_demo as run_demo
from scifm.experiments._executors import EXECUTORS as EXECUTORS
from scifm.experiments._executors import check_executor as check_executor
from scifm.experiments._executors import make_executor as make_executor
from scifm.experiments._markdown import write_report as write_report
from scifm.experiments._plots import plot_error_vs_n as plot_error_vs_n
from scifm.experiments._plots import plot_forgetting as plot_forgetting
from scifm.experiments._plots import plot_gain_vs_size as plot_gain_vs_size
from scifm.experiments._points import Method as Method
from scifm.experiments._points import MethodKind as MethodKind
from scifm.experiments._points import Point as Point
from scifm.experiments._points import PointKind as PointKind
from scifm.experiments._points import Status as Status
from scifm.experiments._pretrained import pack_pretrained as pack_pretrained
from scifm.experiments._results import Row as Row
from scifm.experiments._results import read_results as read_results
from scifm.experiments._results import rows_from_points as rows_from_points
from scifm.experiments._results import write_results as write_results
from scifm.experiments._sweep import execute as execute
from scifm.experiments._sweep import plan as plan
from scifm.experiments._sweep import prepare as prepare
from scifm.experiments._sweep import run_point as run_point
from scifm.experiments._sweep import sweep as sweep

__all__ = [
    "EXECUTORS",
    "METHODS",
    "CurvePoint",
    "DataSaving",
    "Forgetting",
    "Headline",
    "Method",
    "MethodKind",
    "Point",
    "PointKind",
    "Pretrain",
    "Row",
    "Status",
    "Study",
    "Task",
    "builtin_studies",
    "check_executor",
    "curves",
    "data_saving",
    "execute",
    "forgetting",
    "harmonic_score",
    "headline",
    "load_study",
    "make_executor",
    "pack_pretrained",
    "plan",
    "plot_error_vs_n",
    "plot_forgetting",
    "plot_gain_vs_size",
    "prepare",
    "read_results",
    "rows_from_points",
    "run_demo",
    "run_point",
    "sweep",
    "write_report",
    "write_results",
]
