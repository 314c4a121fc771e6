"""Training neural operators: losses, the pure step and fit loop, evaluation, checkpoints,
fine-tuning strategies.

    from scifm import train
    model, preset = train.start_model(fields, preset="fno-1m")
    result = train.fit(model, fields, val, "runs/poisson", epochs=20, loss=train.relative_l2)

Runs live in the run-directory layout every pillar shares (see ``fit``).
"""

from scifm._runs import DivergenceError as DivergenceError
from scifm._runs import RunConflict as RunConflict
from scifm._runs import RunError as RunError
from scifm._runs import RunFinished as RunFinished
from scifm.train._checkpoint import check_compatible as check_compatible
from scifm.train._checkpoint import hyperparameters as hyperparameters
from scifm.train._checkpoint import load as load
from scifm.train._checkpoint import save as save
from scifm.train._checkpoint import skeleton as skeleton
from scifm.train._distributed import initialize as initialize_distributed
from scifm.train._evaluate import errors as errors
from scifm.train._evaluate import evaluate as evaluate
from scifm.train._evaluate import summarise as summarise
from scifm.train._fit import cosine_lr as cosine_lr
from scifm.train._fit import data_parallel as data_parallel
from scifm.train._fit import fit as fit
from scifm.train._fit import make_optimizer as make_optimizer
from scifm.train._fit import make_train_step as make_train_step
from scifm.train._logging import MLflow as MLflow
from scifm.train._logging import TensorBoard as TensorBoard
from scifm.train._logging import check_loggers as check_loggers
from scifm.train._logging import make_loggers as make_loggers
from scifm.train._losses import LOSSES as LOSSES
from scifm.train._losses import get_loss as get_loss
from scifm.train._losses import relative_l2 as relative_l2
from scifm.train._losses import relative_l2_per_sample as relative_l2_per_sample
from scifm.train._losses import summed_squared_error as summed_squared_error
from scifm.train._physics import AbstractOperator as AbstractOperator
from scifm.train._physics import ConstantCoefficients as ConstantCoefficients
from scifm.train._physics import PhysicsLoss as PhysicsLoss
from scifm.train._physics import VariableDiffusion as VariableDiffusion
from scifm.train._physics import physics_loss as physics_loss
from scifm.train._physics import physics_residuals as physics_residuals
from scifm.train._physics import unlabelled as unlabelled
from scifm.train._plots import plot_curves as plot_curves
from scifm.train._start import start_model as start_model
from scifm.train._strategies import L2SP as L2SP
from scifm.train._strategies import STRATEGIES as STRATEGIES
from scifm.train._strategies import AbstractStrategy as AbstractStrategy
from scifm.train._strategies import Full as Full
from scifm.train._strategies import Last as Last
from scifm.train._strategies import Magnitude as Magnitude
from scifm.train._strategies import Spider as Spider
from scifm.train._strategies import get_strategy as get_strategy

__all__ = [
    "L2SP",
    "MLflow",
    "TensorBoard",
    "AbstractOperator",
    "ConstantCoefficients",
    "PhysicsLoss",
    "VariableDiffusion",
    "LOSSES",
    "STRATEGIES",
    "AbstractStrategy",
    "DivergenceError",
    "Full",
    "Last",
    "Magnitude",
    "RunConflict",
    "RunError",
    "RunFinished",
    "Spider",
    "check_compatible",
    "cosine_lr",
    "data_parallel",
    "errors",
    "evaluate",
    "check_loggers",
    "make_loggers",
    "fit",
    "get_loss",
    "hyperparameters",
    "initialize_distributed",
    "load",
    "make_optimizer",
    "make_train_step",
    "physics_loss",
    "physics_residuals",
    "plot_curves",
    "relative_l2",
    "relative_l2_per_sample",
    "save",
    "skeleton",
    "start_model",
    "summarise",
    "summed_squared_error",
    "unlabelled",
]
