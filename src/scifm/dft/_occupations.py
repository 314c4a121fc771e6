"""Occupation numbers from eigenvalues: fixed (insulators) or Fermi-Dirac (smearing)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scifm._checks import UserError
from scifm.dft._hamiltonian import fermi_dirac


def fixed_occupations(eigenvalues, electrons: int):
    """The lowest ``electrons / 2`` bands full at every k-point (an insulator at T = 0)."""
    if electrons % 2:
        raise UserError(
            f"{electrons} electrons cannot fill whole bands without smearing; give --smearing"
        )
    nocc = electrons // 2
    nb = eigenvalues.shape[-1]
    occupations = jnp.broadcast_to((jnp.arange(nb) < nocc).astype(eigenvalues.dtype), eigenvalues.shape)
    homo = jnp.max(eigenvalues[:, nocc - 1])
    return occupations, homo


def fermi_level(eigenvalues, weights, electrons: float, temperature: float):
    """The chemical potential ``mu`` with ``sum_k w_k sum_i 2 f((e - mu) / T) = N`` (bisection
    to machine precision)."""
    low = jnp.min(eigenvalues) - 50 * temperature - 1.0
    high = jnp.max(eigenvalues) + 50 * temperature + 1.0

    def count(mu):
        return jnp.sum(2 * weights[:, None] * fermi_dirac((eigenvalues - mu) / temperature))

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        too_many = count(mid) > electrons
        return jnp.where(too_many, lo, mid), jnp.where(too_many, mid, hi)

    lo, hi = jax.lax.fori_loop(0, 200, body, (low, high))
    return 0.5 * (lo + hi)


def smeared_occupations(eigenvalues, weights, electrons: float, temperature: float):
    mu = fermi_level(eigenvalues, weights, electrons, temperature)
    return fermi_dirac((eigenvalues - mu) / temperature), mu


def check_bands(bands: int, electrons: int, smearing: float) -> None:
    """Enough bands for the electrons (and some empty ones when smearing)."""
    needed = int(np.ceil(electrons / 2))
    if bands < needed:
        raise UserError(
            f"{bands} bands cannot hold {electrons} electrons; give at least {needed} bands"
        )
    if smearing > 0 and bands == needed and electrons % 2 == 0:
        raise UserError(
            f"smearing needs empty bands: give more than {needed} bands for {electrons} electrons"
        )
