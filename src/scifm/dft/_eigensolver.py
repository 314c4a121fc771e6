"""Kohn-Sham eigensolvers: dense ``eigh`` and an iterative LOBPCG with a kinetic preconditioner.

The dense solver builds the whole ``npw x npw`` matrix at every k-point (exact, ``O(npw^3)``);
it is the right choice for small cells. LOBPCG (Knyazev 2001) needs only ``H c`` products,
which :meth:`Hamiltonian.apply` forms by FFT, and converges the lowest ``bands`` states: each
sweep takes the Rayleigh-Ritz solution in the span of the current vectors ``X``, the
preconditioned residuals ``W = K (H X - X Theta)`` and the previous step ``P``. The
preconditioner is Teter, Payne and Allan's (Phys. Rev. B 40, 12255 (1989)) in
``x = |k+G|^2 / 2 / E_kin(band)``. Warm-started from the previous SCF cycle's orbitals, a few
sweeps per cycle suffice, as in ABINIT and Quantum ESPRESSO.

Everything is fixed-shape and batched over k-points (the k axis leads), so one sweep is one
compiled call on one device or many.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from scifm.dft._sharding import per_kpoint

_DROP = 1e-10  # overlap eigenvalues below this (relative) mark dependent directions
_FAR = 1e6  # Hartree: the energy given to dropped directions so they are never chosen


@dataclasses.dataclass(frozen=True)
class Dense:
    """``jnp.linalg.eigh`` of the full Kohn-Sham matrix at each k-point."""


@dataclasses.dataclass(frozen=True)
class LOBPCG:
    """Locally optimal block preconditioned conjugate gradient.

    Args:
        sweeps: sweeps per SCF cycle (warm-started from the previous cycle's orbitals).
        first_sweeps: sweeps in the first cycle, from random orbitals.
        extra_bands: bands solved beyond those requested (the highest converge slowest;
            ABINIT's habit of a buffer of bands).
    """

    sweeps: int = 3
    first_sweeps: int = 30
    extra_bands: int = 2


def _project_out(x, w):
    """``w`` minus its components along the orthonormal columns of ``x``, columns normalised."""
    w = w - x @ (jnp.conj(jnp.swapaxes(x, -1, -2)) @ w)
    norm = jnp.linalg.norm(w, axis=-2, keepdims=True)
    return w / jnp.where(norm > 0, norm, 1.0)


def _adjoint(a):
    return jnp.conj(jnp.swapaxes(a, -1, -2))


def rayleigh_ritz(s, hs, count: int, eigh=jnp.linalg.eigh):
    """The lowest ``count`` Ritz pairs of H in the span of the columns of ``s``.

    ``s`` (..., npw, n) need not be orthonormal; directions the overlap shows to be
    dependent are dropped (given a far energy) so the shapes stay fixed.
    Returns ``(values (..., count), vectors (..., npw, count), H vectors)``.
    """
    overlap = _adjoint(s) @ s
    lam, u = eigh(overlap)
    keep = lam > _DROP * jnp.max(lam, axis=-1, keepdims=True)
    t = u / jnp.sqrt(jnp.where(keep, lam, 1.0))[..., None, :]
    t = jnp.where(keep[..., None, :], t, 0.0)
    projected = _adjoint(t) @ (_adjoint(s) @ hs) @ t
    projected = 0.5 * (projected + _adjoint(projected))
    projected = projected + jnp.eye(lam.shape[-1]) * jnp.where(keep, 0.0, _FAR)[..., None, :]
    values, y = eigh(projected)
    y = t @ y[..., :count]
    return values[..., :count], s @ y, hs @ y


def teter(residual, x, kinetic):
    """Teter-Payne-Allan preconditioner applied to the residual of each band."""
    norms = jnp.sum(jnp.abs(x) ** 2, axis=-2)
    band_kinetic = jnp.sum(kinetic[..., None] * jnp.abs(x) ** 2, axis=-2) / jnp.maximum(norms, 1e-30)
    r = kinetic[..., None] / jnp.maximum(band_kinetic, 1e-6)[..., None, :]
    num = 27 + 18 * r + 12 * r**2 + 8 * r**3
    return residual * num / (num + 16 * r**4)


def lobpcg(apply, x, kinetic, mask, sweeps: int, sharding=None):
    """``sweeps`` LOBPCG sweeps from the columns of ``x`` (nk, npw, m).

    Args:
        apply: ``c -> H c`` for (nk, npw, n) coefficients.
        kinetic: (nk, npw) ``|k+G|^2 / 2``; mask: (nk, npw) the real plane waves.
        sharding: the k-points' sharding (see :func:`scifm.dft._sharding.per_kpoint`).
    Returns:
        ``(eigenvalues (nk, m), vectors (nk, npw, m), residual norms (nk, m))``.
    """
    m = x.shape[-1]
    mask = mask[..., None]
    eigh = per_kpoint(jnp.linalg.eigh, sharding)
    x = per_kpoint(lambda a: jnp.linalg.qr(a).Q, sharding)(x * mask) * mask
    theta, x, hx = rayleigh_ritz(x, apply(x), m, eigh)
    p, hp = jnp.zeros_like(x), jnp.zeros_like(x)

    def sweep(_, carry):
        x, hx, theta, p, hp = carry
        residual = (hx - x * theta[..., None, :]) * mask
        w = _project_out(x, teter(residual, x, kinetic) * mask)
        hw = apply(w)
        s = jnp.concatenate([x, w, p], axis=-1)
        hs = jnp.concatenate([hx, hw, hp], axis=-1)
        theta_new, x_new, hx_new = rayleigh_ritz(s, hs, m, eigh)
        along = _adjoint(x) @ x_new
        p_new, hp_new = x_new - x @ along, hx_new - hx @ along
        return x_new * mask, hx_new * mask, theta_new, p_new * mask, hp_new * mask

    x, hx, theta, _, _ = jax.lax.fori_loop(0, sweeps, sweep, (x, hx, theta, p, hp))
    residual = jnp.linalg.norm((hx - x * theta[..., None, :]) * mask, axis=-2)
    return theta, x, residual
