"""Local-density exchange-correlation, spin-unpolarised: Slater exchange plus PW92 or PZ81.

Each functional gives ``eps_xc(rho)``, the energy per electron of the uniform gas of density
``rho`` (Hartree); the energy is ``int rho eps_xc(rho)`` and the potential its derivative,
taken by JAX. With ``r_s = (3 / 4 pi rho)^(1/3)``:

- exchange: ``eps_x = -(3/4) (3/pi)^(1/3) rho^(1/3) = -0.4581652933 / r_s``;
- PW92 correlation (Perdew and Wang, PRB 45, 13244 (1992), unpolarised, p = 1):
  ``eps_c = -2 A (1 + a1 r_s) ln(1 + 1 / (2 A (b1 r_s^(1/2) + b2 r_s + b3 r_s^(3/2) + b4 r_s^2)))``
  with A = 0.031091, a1 = 0.21370, b1..b4 = 7.5957, 3.5876, 1.6382, 0.49294 (ABINIT ``ixc 7``);
- PZ81 correlation (Perdew and Zunger, PRB 23, 5048 (1981), Ceperley-Alder fit):
  ``gamma / (1 + beta1 sqrt(r_s) + beta2 r_s)`` for r_s >= 1, else
  ``A ln r_s + B + C r_s ln r_s + D r_s``.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from scifm._checks import UserError

DENSITY_FLOOR = 1e-14  # below this (electrons / bohr^3) the density counts as this (ABINIT's xc_denpos)


def _rs(rho):
    return (3 / (4 * jnp.pi * rho)) ** (1 / 3)


def slater_exchange(rho):
    return -0.75 * (3 / math.pi) ** (1 / 3) * rho ** (1 / 3)


class AbstractLDA(eqx.Module):
    """An LDA functional: ``eps_xc(rho)`` per electron; ``energy_density`` is ``rho eps_xc``."""

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def correlation(self, rs): ...

    def eps_xc(self, rho):
        rho = jnp.maximum(rho, DENSITY_FLOOR)
        return slater_exchange(rho) + self.correlation(_rs(rho))

    def energy_density(self, rho):
        return jnp.maximum(rho, DENSITY_FLOOR) * self.eps_xc(rho)

    def potential(self, rho):
        """``d(rho eps_xc)/d rho`` pointwise."""
        return jax.vmap(jax.grad(self.energy_density))(rho.ravel()).reshape(rho.shape)


class PW92(AbstractLDA):
    """Slater exchange + Perdew-Wang 1992 correlation (ABINIT ``ixc 7``, libxc LDA_C_PW)."""

    name: ClassVar[str] = "lda-pw92"

    def correlation(self, rs):
        a, a1, b1, b2, b3, b4 = 0.031091, 0.21370, 7.5957, 3.5876, 1.6382, 0.49294
        srs = jnp.sqrt(rs)
        denominator = 2 * a * (b1 * srs + b2 * rs + b3 * rs * srs + b4 * rs**2)
        return -2 * a * (1 + a1 * rs) * jnp.log1p(1 / denominator)


class PZ81(AbstractLDA):
    """Slater exchange + Perdew-Zunger 1981 correlation (ABINIT ``ixc 2``)."""

    name: ClassVar[str] = "lda-pz81"

    def correlation(self, rs):
        gamma, beta1, beta2 = -0.1423, 1.0529, 0.3334
        a, b, c, d = 0.0311, -0.048, 0.0020, -0.0116
        safe_high = jnp.maximum(rs, 1.0)
        safe_low = jnp.minimum(rs, 1.0)
        high = gamma / (1 + beta1 * jnp.sqrt(safe_high) + beta2 * safe_high)
        low = a * jnp.log(safe_low) + b + c * safe_low * jnp.log(safe_low) + d * safe_low
        return jnp.where(rs >= 1, high, low)


FUNCTIONALS = {f.name: f for f in (PW92, PZ81)}


def functional(name: str) -> AbstractLDA:
    """The functional of a CLI name (``lda-pw92``, ``lda-pz81``)."""
    if name not in FUNCTIONALS:
        raise UserError(f"unknown functional {name!r}; choose from {', '.join(FUNCTIONALS)}")
    return FUNCTIONALS[name]()
