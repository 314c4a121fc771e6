"""High-dimensional PINNs: problems with exact solutions, the hard-constrained ansatz,
training with a run directory.

    from scifm import pinn, operators as ops
    problem = pinn.make_problem("allen-cahn-2body", 1000, key=jax.random.key(0))
    model, result = pinn.fit(problem, ops.STDE(num_samples=16), steps=1000)

Add a PDE: subclass :class:`AbstractProblem` (``operator`` and ``forcing``) or, for
``Lap u + f(u) = g``, pass ``f`` to :class:`Semilinear`.
"""

from ._model import HardConstraint as HardConstraint
from ._plot import plot_metrics as plot_metrics
from ._problems import AbstractProblem as AbstractProblem
from ._problems import Biharmonic as Biharmonic
from ._problems import Semilinear as Semilinear
from ._problems import make_problem as make_problem
from ._problems import problem_names as problem_names
from ._problems import sample_shell as sample_shell
from ._registry import ESTIMATORS as ESTIMATORS
from ._registry import make_estimator as make_estimator
from ._solutions import ANNULUS as ANNULUS
from ._solutions import BALL as BALL
from ._solutions import AbstractTerm as AbstractTerm
from ._solutions import TermSumSolution as TermSumSolution
from ._solutions import ThreeBody as ThreeBody
from ._solutions import TwoBody as TwoBody
from ._solutions import three_body as three_body
from ._solutions import two_body as two_body
from ._train import DivergenceError as DivergenceError
from ._train import fit as fit
from ._train import make_model as make_model
from ._train import make_optimizer as make_optimizer
from ._train import make_step as make_step
from ._train import pinn_loss as pinn_loss
from ._train import relative_l2 as relative_l2

__all__ = [
    "ANNULUS",
    "BALL",
    "AbstractProblem",
    "AbstractTerm",
    "Biharmonic",
    "DivergenceError",
    "ESTIMATORS",
    "HardConstraint",
    "Semilinear",
    "TermSumSolution",
    "ThreeBody",
    "TwoBody",
    "fit",
    "make_estimator",
    "make_model",
    "make_optimizer",
    "make_problem",
    "make_step",
    "pinn_loss",
    "plot_metrics",
    "problem_names",
    "relative_l2",
    "sample_shell",
    "three_body",
    "two_body",
]
