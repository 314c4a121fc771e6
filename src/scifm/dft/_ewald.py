"""Ewald energy of point ions in a neutralising uniform background.

``E = 1/2 sum_{a,b} Z_a Z_b sum'_T erfc(eta |tau_ab + T|) / |tau_ab + T|
      + (2 pi / Omega) sum_{G != 0} |sum_a Z_a exp(i G.tau_a)|^2 exp(-G^2 / 4 eta^2) / G^2
      - eta / sqrt(pi) sum_a Z_a^2 - pi (sum_a Z_a)^2 / (2 Omega eta^2)``

independent of ``eta``; the lattice sums are cut where their terms fall below 1e-16 relative.
Differentiable in the positions (forces) by JAX.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_TAIL = 36.0  # erfc(6) ~ 2e-17, exp(-36) ~ 2e-16


def _cells(vectors: np.ndarray, radius: float) -> np.ndarray:
    """Integer triples n with |n @ vectors| possibly <= radius."""
    inverse = np.linalg.inv(vectors)
    bounds = np.ceil(radius * np.linalg.norm(inverse, axis=0)).astype(int)
    ranges = [np.arange(-b, b + 1) for b in bounds]
    n = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    return n[np.linalg.norm(n @ vectors, axis=1) <= radius + 1e-9]


def ewald_energy(lattice: np.ndarray, positions, charges) -> jax.Array:
    """The Ewald energy (Hartree) of ``charges`` at reduced ``positions`` in ``lattice`` (rows,
    bohr); ``positions`` may be traced (forces by ``jax.grad``)."""
    lattice = np.asarray(lattice, dtype=np.float64)
    charges = jnp.asarray(charges, dtype=jnp.float64)
    volume = abs(np.linalg.det(lattice))
    reciprocal = 2 * np.pi * np.linalg.inv(lattice).T
    eta = math.sqrt(math.pi) / volume ** (1 / 3)  # balances the two sums
    real_cut = math.sqrt(_TAIL) / eta + np.linalg.norm(lattice, axis=1).sum()
    g_cut = 2 * eta * math.sqrt(_TAIL)
    translations = _cells(lattice, real_cut) @ lattice
    g = _cells(reciprocal, g_cut) @ reciprocal
    g = g[np.linalg.norm(g, axis=1) > 1e-12]
    g2 = np.sum(g**2, axis=1)

    cartesian = jnp.asarray(positions) @ lattice
    d = cartesian[:, None, None, :] - cartesian[None, :, None, :] + translations[None, None]
    r2 = jnp.sum(d**2, axis=-1)
    self_term = r2 < 1e-20
    safe = jnp.sqrt(jnp.where(self_term, 1.0, r2))  # no sqrt(0): its gradient is NaN
    pair = jnp.where(self_term, 0.0, jax.scipy.special.erfc(eta * safe) / safe)
    zz = charges[:, None] * charges[None, :]
    real = 0.5 * jnp.sum(zz * jnp.sum(pair, axis=-1))

    phase = cartesian @ g.T  # (atoms, G)
    structure = jnp.sum(charges[:, None] * jnp.exp(1j * phase), axis=0)
    recip = 2 * np.pi / volume * jnp.sum(jnp.abs(structure) ** 2 * np.exp(-g2 / (4 * eta**2)) / g2)
    constant = -eta / math.sqrt(math.pi) * jnp.sum(charges**2) - math.pi * jnp.sum(
        charges
    ) ** 2 / (2 * volume * eta**2)
    return real + recip + constant
