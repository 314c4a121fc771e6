"""PDE systems of the transfer study, solved exactly by FFT on the periodic unit square.

``Poisson``, ``AdvectionDiffusion`` and ``Helmholtz`` are special cases of one operator with
six coefficients (``COEFFICIENT_NAMES``); ``solve`` is its exact spectral solve.
"""

from scifm.pdes._advdiff import AdvectionDiffusion, advection_ratio, advection_speed
from scifm.pdes._base import AbstractPDESystem, Samples
from scifm.pdes._helmholtz import Helmholtz, resonances
from scifm.pdes._poisson import Poisson
from scifm.pdes._sources import GaussianBumps
from scifm.pdes._spectral import COEFFICIENT_NAMES, EQUATION, solve, symbol

SYSTEMS: dict[str, type[AbstractPDESystem]] = {
    cls.name: cls for cls in (Poisson, AdvectionDiffusion, Helmholtz)
}


def get_system(name: str, **options) -> AbstractPDESystem:
    """The system registered under ``name`` (CLI/config boundary); unknown names list the valid ones."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; valid systems: {', '.join(SYSTEMS)}")
    return SYSTEMS[name](**options)


__all__ = [
    "COEFFICIENT_NAMES",
    "EQUATION",
    "SYSTEMS",
    "AbstractPDESystem",
    "AdvectionDiffusion",
    "GaussianBumps",
    "Helmholtz",
    "Poisson",
    "Samples",
    "advection_ratio",
    "advection_speed",
    "get_system",
    "resonances",
    "solve",
    "symbol",
]
