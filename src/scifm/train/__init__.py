"""Training: losses, the pure step and fit loop, evaluation, checkpoints."""

from scifm.train._checkpoint import check_compatible, load, save
from scifm.train._fit import (
    TrainingDiverged,
    errors,
    evaluate,
    fit,
    make_optimizer,
    make_train_step,
    summarise,
)
from scifm.train._losses import (
    LOSSES,
    get_loss,
    relative_l2,
    relative_l2_per_sample,
    summed_squared_error,
)

__all__ = [
    "LOSSES",
    "TrainingDiverged",
    "check_compatible",
    "errors",
    "evaluate",
    "fit",
    "get_loss",
    "load",
    "make_optimizer",
    "make_train_step",
    "relative_l2",
    "relative_l2_per_sample",
    "save",
    "summarise",
    "summed_squared_error",
]
