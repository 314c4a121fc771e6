"""PDE systems of the transfer study, solved exactly by FFT on the periodic unit square.

``Poisson``, ``AdvectionDiffusion`` and ``Helmholtz`` are special cases of one operator with
six coefficients (``COEFFICIENT_NAMES``); ``solve`` is its exact spectral solve. ``Darcy`` has a
coefficient field (inputs ``f`` and ``a``), solved by preconditioned conjugate gradients.
"""

from scifm._checks import UserError
from scifm.pdes._advdiff import AdvectionDiffusion as AdvectionDiffusion
from scifm.pdes._advdiff import advection_ratio as advection_ratio
from scifm.pdes._advdiff import advection_speed as advection_speed
from scifm.pdes._base import AbstractPDESystem as AbstractPDESystem
from scifm.pdes._base import Samples as Samples
from scifm.pdes._base import check_resolution as check_resolution
from scifm.pdes._darcy import Darcy as Darcy
from scifm.pdes._darcy import LogNormalField as LogNormalField
from scifm.pdes._helmholtz import Helmholtz as Helmholtz
from scifm.pdes._helmholtz import resonances as resonances
from scifm.pdes._poisson import Poisson as Poisson
from scifm.pdes._sources import GaussianBumps as GaussianBumps
from scifm.pdes._spectral import COEFFICIENT_NAMES as COEFFICIENT_NAMES
from scifm.pdes._spectral import EQUATION as EQUATION
from scifm.pdes._spectral import solve as solve
from scifm.pdes._spectral import symbol as symbol

SYSTEMS: dict[str, type[AbstractPDESystem]] = {
    cls.name: cls for cls in (Poisson, AdvectionDiffusion, Helmholtz, Darcy)
}


def get_system(name: str, **options) -> AbstractPDESystem:
    """The system registered under ``name`` (CLI/config boundary); unknown names list the valid ones."""
    if name not in SYSTEMS:
        raise UserError(f"unknown system {name!r}; valid systems: {', '.join(SYSTEMS)}")
    return SYSTEMS[name](**options)


__all__ = [
    "COEFFICIENT_NAMES",
    "EQUATION",
    "SYSTEMS",
    "AbstractPDESystem",
    "AdvectionDiffusion",
    "Darcy",
    "GaussianBumps",
    "Helmholtz",
    "LogNormalField",
    "Poisson",
    "Samples",
    "advection_ratio",
    "advection_speed",
    "check_resolution",
    "get_system",
    "resonances",
    "solve",
    "symbol",
]
