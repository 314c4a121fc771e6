"""Anisotropic Poisson: ``-div(K grad u) = f``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scifm._checks import UserError
from scifm.pdes._base import AbstractPDESystem, check_range, rotated_diffusion


@dataclass(frozen=True)
class Poisson(AbstractPDESystem):
    """``-div(K grad u) = f`` with ``K = kappa R(-theta) diag(1, e) R(theta)``.

    ``e ~ U[eig_range]`` is the anisotropy (the eigenvalue ratio of K), ``theta ~ U[0, 2 pi)``
    its orientation, ``kappa`` the diffusivity scale (0.01, as in Subramanian et al. 2023).
    The constant mode is the null space: ``f`` and ``u`` have zero mean.
    Out-of-distribution tasks shift ``eig_range`` (e.g. [1, 5] -> [5, 10] -> [10, 20]).
    """

    name: ClassVar[str] = "poisson"
    parameter_names: ClassVar[tuple[str, ...]] = ("e", "theta")
    description: ClassVar[str] = "-div(K grad u) = f, K = kappa R(-theta) diag(1, e) R(theta)"
    eig_range: tuple[float, float] = (1.0, 5.0)
    kappa: float = 0.01

    def __post_init__(self):
        check_range("eig_range (the eigenvalue e of K)", self.eig_range, low=0.0, strict=True)
        if not self.kappa > 0:
            raise UserError(f"kappa must be > 0, got {self.kappa}")

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.uniform(*self.eig_range), rng.uniform(0.0, 2 * np.pi)])

    def coefficients(self, parameters: np.ndarray, f_hat: np.ndarray) -> np.ndarray:
        k = rotated_diffusion(parameters[:, 0], parameters[:, 1], self.kappa)
        return np.concatenate([k, np.zeros((len(k), 3))], axis=1)
