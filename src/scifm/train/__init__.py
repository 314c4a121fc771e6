"""Training: losses, the pure step and fit loop, evaluation, checkpoints."""

from scifm.train._checkpoint import check_compatible, load, save
from scifm.train._fit import (
    TrainingDiverged,
    cosine_lr,
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
from scifm.train._start import start_model
from scifm.train._strategies import (
    L2SP,
    STRATEGIES,
    AbstractStrategy,
    Full,
    Last,
    Magnitude,
    Spider,
    get_strategy,
)

__all__ = [
    "LOSSES",
    "STRATEGIES",
    "AbstractStrategy",
    "Full",
    "L2SP",
    "Last",
    "Magnitude",
    "Spider",
    "cosine_lr",
    "get_strategy",
    "start_model",
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
