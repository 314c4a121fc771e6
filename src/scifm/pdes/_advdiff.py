"""Advection-diffusion: ``-div(K grad u) + v . grad u = f`` at a prescribed advection ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scifm._checks import UserError
from scifm.pdes import _spectral
from scifm.pdes._base import AbstractPDESystem, check_range, rotated_diffusion

_NEWTON_STEPS = 100
_TOL = 1e-13


def _ratio_terms(coefficients: np.ndarray, direction: np.ndarray, f_hat: np.ndarray):
    """Diffusion symbol ``a``, unit-speed advection symbol ``b`` and Parseval weights ``p`` (B, H, H//2+1).

    For ``v = s * direction``: ``u^ = f^ / (a + i s b)`` and
    ``psi(s)^2 = sum p s^2 b^2 / (a^2 + s^2 b^2) / sum p a^2 / (a^2 + s^2 b^2)``, ``p = w |f^|^2``.
    The constant mode (a = b = 0) carries no weight.
    """
    resolution = f_hat.shape[-2]
    kx, ky = _spectral.wavenumbers(resolution)
    k11, k22, k12 = (coefficients[:, i, None, None] for i in range(3))
    a = k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2
    b = direction[:, 0, None, None] * kx + direction[:, 1, None, None] * ky
    keep = _spectral.band_mask(resolution) & (a > 0)
    p = np.where(keep, _spectral.parseval_weights(resolution) * np.abs(f_hat) ** 2, 0.0)
    return np.where(keep, a, 1.0), b, p


def _log_ratio(t: np.ndarray, a2, b2, p, *, derivative: bool = True):
    """``log psi`` at speed ``s = exp(t)`` and (if ``derivative``) its derivative in ``t``, (B,) each.

    ``a2``, ``b2`` are ``a**2``, ``b**2`` of :func:`_ratio_terms`, squared once by the caller.
    """
    s2b2 = np.exp(2 * t)[:, None, None] * b2
    denominator = a2 + s2b2
    inv = p / denominator
    inv_b2, inv_a2 = inv * b2, inv * a2
    num, den = inv_b2.sum(axis=(1, 2)), inv_a2.sum(axis=(1, 2))
    value = t + 0.5 * (np.log(num) - np.log(den))
    if not derivative:
        return value
    q = s2b2 / denominator
    qn = (inv_b2 * q).sum(axis=(1, 2)) / num
    qd = (inv_a2 * q).sum(axis=(1, 2)) / den
    return value, 1.0 - qn + qd


def advection_speed(
    coefficients: np.ndarray, direction: np.ndarray, f_hat: np.ndarray, psi: np.ndarray
) -> np.ndarray:
    """The speed ``s`` at which ``||v . grad u|| / ||div(K grad u)|| = psi`` for ``v = s * direction``.

    The ratio increases strictly from 0 to infinity with ``s`` (each advective Fourier term grows,
    each diffusive one shrinks), so the root is unique; it is found by Newton's method in
    ``log s``, safeguarded by bisection, to ``|log psi(s) - log target| < 1e-13``.
    """
    a, b, p = _ratio_terms(coefficients, direction, f_hat)
    a2, b2 = a**2, b**2
    target = np.log(np.maximum(psi, 1e-300))
    # small-speed limit psi ~ s * sqrt(sum p b^2/a^2 / sum p) gives the first guess
    slope = np.sqrt((p * b2 / a2).sum(axis=(1, 2)) / p.sum(axis=(1, 2)))
    t = target - np.log(slope)
    lo, hi = t - 1.0, t + 1.0
    for _ in range(200):  # widen the bracket until it holds the root
        glo = _log_ratio(lo, a2, b2, p, derivative=False) - target
        ghi = _log_ratio(hi, a2, b2, p, derivative=False) - target
        if (glo <= 0).all() and (ghi >= 0).all():
            break
        lo = np.where(glo > 0, lo - 2 * (hi - lo), lo)
        hi = np.where(ghi < 0, hi + 2 * (hi - lo), hi)
    # Each sample iterates until its own residual is below tolerance and is then frozen and
    # dropped from the arrays, so a sample's speed does not depend on which other samples share
    # its batch (and converged samples cost nothing).
    todo, terms = np.arange(len(t)), (a2, b2, p)
    for _ in range(_NEWTON_STEPS):
        g, dg = _log_ratio(t[todo], *terms)
        g -= target[todo]
        going = np.abs(g) >= _TOL
        if not going.any():
            break
        if not going.all():
            todo, g, dg = todo[going], g[going], dg[going]
            terms = tuple(x[going] for x in terms)
        now, low, high = t[todo], lo[todo], hi[todo]
        low = np.where(g < 0, now, low)
        high = np.where(g > 0, now, high)
        step = now - g / dg
        t[todo] = np.where((step > low) & (step < high), step, 0.5 * (low + high))
        lo[todo], hi[todo] = low, high
    else:
        raise RuntimeError("advection speed did not converge; report this as a bug")
    return np.where(psi > 0, np.exp(t), 0.0)


@dataclass(frozen=True)
class AdvectionDiffusion(AbstractPDESystem):
    """``-div(K grad u) + v . grad u = f`` with a prescribed advection-to-diffusion ratio ``psi``.

    ``K = kappa R(-theta) diag(1, e) R(theta)`` as in :class:`Poisson` (``e ~ U[eig_range]``,
    ``kappa = 0.01``); ``v = s (cos phi, sin phi)`` with ``phi ~ U[0, 2 pi)`` and the speed ``s``
    solved for so that, for this sample's solution,

        psi = ||v . grad u||_2 / ||div(K grad u)||_2      (grid L2 norms)

    equals ``psi ~ U[ratio_range]`` to 1e-13 (the TL-scaling code (neuraloperators-TL-scaling) picks a coupling from a
    precomputed table, so its realised ratio only approximates the target). The realised ratio,
    computed from the solution, is stored as parameter ``psi``. Unlike the TL-scaling code, the
    diffusion is not scaled down as advection grows: ``psi`` alone sets the balance.
    """

    name: ClassVar[str] = "advdiff"
    parameter_names: ClassVar[tuple[str, ...]] = ("e", "theta", "phi", "psi")
    description: ClassVar[str] = (
        "-div(K grad u) + v . grad u = f, ||v.grad u|| / ||div(K grad u)|| = psi"
    )
    ratio_range: tuple[float, float] = (0.2, 1.0)
    eig_range: tuple[float, float] = (1.0, 5.0)
    kappa: float = 0.01

    def __post_init__(self):
        check_range(
            "ratio_range (the advection ratio psi)", self.ratio_range, low=0.0, strict=False
        )
        check_range("eig_range (the eigenvalue e of K)", self.eig_range, low=0.0, strict=True)
        if not self.kappa > 0:
            raise UserError(f"kappa must be > 0, got {self.kappa}")

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        e = rng.uniform(*self.eig_range)
        theta, phi = rng.uniform(0.0, 2 * np.pi, 2)
        return np.array([e, theta, phi, rng.uniform(*self.ratio_range)])

    def coefficients(self, parameters: np.ndarray, f_hat: np.ndarray) -> np.ndarray:
        k = rotated_diffusion(parameters[:, 0], parameters[:, 1], self.kappa)
        direction = np.stack([np.cos(parameters[:, 2]), np.sin(parameters[:, 2])], axis=-1)
        s = advection_speed(k, direction, f_hat, parameters[:, 3])
        return np.concatenate([k, s[:, None] * direction, np.zeros((len(k), 1))], axis=1)

    def finalise_parameters(self, parameters, coefficients, u_hat):
        return np.concatenate(
            [parameters[:, :3], advection_ratio(coefficients, u_hat)[:, None]], axis=1
        )


def advection_ratio(coefficients: np.ndarray, u_hat: np.ndarray) -> np.ndarray:
    """``||v . grad u|| / ||div(K grad u)||`` of solutions given by their rfft2 ``u_hat`` (B,)."""
    resolution = u_hat.shape[-2]
    kx, ky = _spectral.wavenumbers(resolution)
    k11, k22, k12, vx, vy = (coefficients[:, i, None, None] for i in range(5))
    w = _spectral.parseval_weights(resolution) * np.abs(u_hat) ** 2
    adv = (w * (vx * kx + vy * ky) ** 2).sum(axis=(1, 2))
    dif = (w * (k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2) ** 2).sum(axis=(1, 2))
    return np.sqrt(adv / dif)
