"""Helmholtz: ``-kappa Lap u - omega u = f``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scifm._checks import UserError
from scifm.pdes._base import AbstractPDESystem, check_range
from scifm.pdes._spectral import SINGULAR_RTOL


def resonances(omega: float, kappa: float, resolution: int | None = None, rtol: float = 1e-9):
    """Lattice shells ``m^2 + n^2`` with ``kappa (2 pi)^2 (m^2 + n^2) == omega`` (to ``rtol``).

    With ``resolution``, only modes the grid resolves (below Nyquist) count.
    """
    shell = omega / (kappa * (2 * np.pi) ** 2)
    top = int(np.floor(shell * (1 + rtol))) + 1
    limit = resolution // 2 - 1 if resolution else top
    m = np.arange(0, min(top, limit) + 1)
    sums = np.unique((m[:, None] ** 2 + m[None, :] ** 2).ravel())
    return [int(s) for s in sums if abs(kappa * (2 * np.pi) ** 2 * s - omega) <= rtol * abs(omega)]


@dataclass(frozen=True)
class Helmholtz(AbstractPDESystem):
    """``-kappa Lap u - omega u = f`` with ``kappa = 0.01`` and ``omega ~ U[omega_range]``.

    The operator is indefinite and singular exactly when ``omega = kappa (2 pi)^2 (m^2 + n^2)``
    for some lattice mode (m, n) (e.g. omega = 1.974 for m^2 + n^2 = 5). scifm handles this in
    two documented steps:

    1. *Exact resonance* (``|symbol| <= 1e-10 max|symbol|``): those modes are the null space;
       ``f`` is projected off them and ``u`` has no component there (minimum-norm solution),
       as for the constant mode of Poisson. A range that is one exactly resonant value is
       refused, since then no sample has a unique solution.
    2. *Near resonance*: a sample whose solution has ``max|u| > max_abs`` (default 2, as in the
       reference code) is rejected and redrawn (source and omega) from the sample's own random
       stream, so datasets stay deterministic. ``max_abs=None`` keeps every sample.

    ``integer_omega=True`` draws integers in the range, as the TL-scaling code does; the default
    draws real values.
    """

    name: ClassVar[str] = "helmholtz"
    parameter_names: ClassVar[tuple[str, ...]] = ("omega",)
    description: ClassVar[str] = "-kappa Lap u - omega u = f"
    omega_range: tuple[float, float] = (1.0, 10.0)
    kappa: float = 0.01
    integer_omega: bool = False
    max_abs: float | None = 2.0

    def __post_init__(self):
        check_range("omega_range", self.omega_range, low=0.0, strict=True)
        if not self.kappa > 0:
            raise UserError(f"kappa must be > 0, got {self.kappa}")
        if self.max_abs is not None and not self.max_abs > 0:
            raise UserError(f"max_abs must be > 0 or None, got {self.max_abs}")
        lo, hi = self.omega_range
        if self.integer_omega:
            values = np.arange(np.ceil(lo), np.floor(hi) + 1)
            if values.size == 0:
                raise UserError(f"omega_range ({lo:g}, {hi:g}) holds no integer (integer_omega)")
        else:
            values = np.array([lo]) if lo == hi else np.array([])
        rtol = SINGULAR_RTOL * 10
        if values.size and all(resonances(v, self.kappa, rtol=rtol) for v in values):
            shells = resonances(values[0], self.kappa, rtol=rtol)
            raise UserError(
                f"omega_range ({lo:g}, {hi:g}) allows only exactly resonant omega "
                f"(kappa (2 pi)^2 (m^2+n^2) = omega for m^2+n^2 = {shells[0]}): no unique "
                "solution; give a range of positive length or a non-resonant value"
            )

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.omega_range
        if self.integer_omega:
            return np.array([float(rng.integers(np.ceil(lo), np.floor(hi) + 1))])
        return np.array([rng.uniform(lo, hi)])

    def coefficients(self, parameters: np.ndarray, f_hat: np.ndarray) -> np.ndarray:
        b = len(parameters)
        k = np.tile([self.kappa, self.kappa, 0.0, 0.0, 0.0], (b, 1))
        return np.concatenate([k, parameters[:, :1]], axis=1)

    def accept(self, u: np.ndarray) -> np.ndarray:
        if self.max_abs is None:
            return super().accept(u)
        return np.abs(u).max(axis=(-2, -1)) <= self.max_abs
