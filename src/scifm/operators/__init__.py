"""Differential operators of scalar functions ``R^d -> R`` and their estimators.

    from scifm import operators as ops
    est = ops.STDE(num_samples=16)   # or ops.Exact(), ops.SDGD(16), ops.Hutchinson(16),
                                     #    ops.DenseSTDE(16)
    ops.laplacian(fn, x, estimator=est, key=key)     # x: shape (d,)
    ops.biharmonic(fn, x, estimator=est, key=key)
    ops.LinearOperator([(1.0, (0, 0, 1))])(fn, x, estimator=est, key=key)   # u_001

Every estimator is unbiased; see each class for its variance and cost in ``d`` and the
derivative order ``k``. Models that subclass :class:`AbstractSplitFunction` (the PINN MLP)
make coordinate tangents cost ``O(width)`` instead of ``O(width d)``; they propagate Taylor
series explicitly with :func:`taylor_compose`, :func:`taylor_multiply` and
:func:`tanh_derivatives` (orders up to :data:`MAX_TAYLOR_ORDER`).
"""

from ._base import AbstractCoordinateEstimator as AbstractCoordinateEstimator
from ._base import AbstractEstimator as AbstractEstimator
from ._base import AbstractSampledEstimator as AbstractSampledEstimator
from ._base import biharmonic as biharmonic
from ._base import laplacian as laplacian
from ._base import value_and_laplacian as value_and_laplacian
from ._exact import Exact as Exact
from ._hutchinson import Hutchinson as Hutchinson
from ._linear import LinearOperator as LinearOperator
from ._sampling import random_subset as random_subset
from ._sdgd import SDGD as SDGD
from ._split import AbstractSplitFunction as AbstractSplitFunction
from ._split import radial_derivative as radial_derivative
from ._stde import STDE as STDE
from ._stde import DenseSTDE as DenseSTDE
from ._taylor import MAX_TAYLOR_ORDER as MAX_TAYLOR_ORDER
from ._taylor import tanh_derivatives as tanh_derivatives
from ._taylor import taylor_compose as taylor_compose
from ._taylor import taylor_multiply as taylor_multiply

__all__ = [
    "AbstractCoordinateEstimator",
    "AbstractEstimator",
    "AbstractSampledEstimator",
    "AbstractSplitFunction",
    "DenseSTDE",
    "Exact",
    "Hutchinson",
    "LinearOperator",
    "MAX_TAYLOR_ORDER",
    "SDGD",
    "STDE",
    "biharmonic",
    "laplacian",
    "radial_derivative",
    "random_subset",
    "tanh_derivatives",
    "taylor_compose",
    "taylor_multiply",
    "value_and_laplacian",
]
