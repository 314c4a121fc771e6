"""Darcy flow with a log-normal permeability: ``-div(a(x) grad u) = f`` on the periodic square.

The first system whose input is a *field*: a sample's inputs are the source ``f`` and the
coefficient ``a`` on the grid (channels ``("f", "a")``), its output the pressure ``u``.

**The coefficient.** ``a(x) = kappa exp(sigma g(x))`` with ``g`` a stationary Gaussian random
field of unit variance and squared-exponential covariance of length ``length_scale``, written as
a trigonometric polynomial over the modes ``|m|, |n| <= LogNormalField.modes`` (the covariance's
weight beyond them is below 1e-5 at the default length), so ``a`` is a smooth function defined
at every point, not only on one grid: the same seed gives the same continuous problem at every
resolution, and ``a`` can be evaluated between grid points (the finite-difference check of the
tests does). ``sigma ~ U[sigma_range]``; ``kappa`` (0.01, the diffusivity of the other systems)
is the geometric mean, so solutions have the other systems' scale.

**The solve.** The operator is discretised as the other systems are (``_spectral``): a grid
function is its trigonometric interpolant with the Nyquist modes removed; derivatives are
spectral; the product ``a grad u`` is taken on the grid. On that space ``A u = -div(a grad u)``
is symmetric and positive definite once the constant mode (its null space; ``a > 0``) is removed,
so ``f`` is projected onto zero mean (as for Poisson) and ``A u = f`` is solved by conjugate
gradients preconditioned with the inverse Laplacian, to a relative residual ``||A u - f|| <=
RTOL ||f||`` (grid L2 norms, float64), ``u`` of zero mean. The coefficient is smooth, so the
discrete solution converges spectrally to the continuous one; a second-order finite-difference
residual of the stored ``(f, a, u)`` falls as ``h^2`` (tested).

The coefficient table of the file holds the constant part of the operator in the shared layout
(``k11 = k22 =`` the grid mean of ``a``, the rest 0), so a model pre-trained on the
constant-coefficient systems reads a Darcy sample as the Poisson problem of its mean
permeability, and the field ``a`` adds what varies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from scifm._checks import UserError
from scifm.pdes import _spectral
from scifm.pdes._base import BLOCK, AbstractPDESystem, Samples, check_range

RTOL = 1e-10
MAX_ITERATIONS = 5000
EQUATION = (
    "-div(a(x) grad u) = f on the periodic unit square [0,1)^2, inputs (f, a), output u; "
    "coefficients: k11 = k22 = mean(a), the rest 0; field[i, j] = value at (x, y) = (i/H, j/H)"
)


@dataclass(frozen=True)
class LogNormalField:
    """``g = sum_{m, n} w_mn (xi_mn cos 2 pi (m x + n y) + eta_mn sin 2 pi (m x + n y))``.

    Over the half plane of modes ``0 < |(m, n)|``, ``|m|, |n| <= modes`` (``n > 0``, or ``n = 0``
    and ``m > 0``); ``xi, eta ~ N(0, 1)``; ``w_mn^2`` proportional to
    ``exp(-(2 pi)^2 (m^2 + n^2) length_scale^2 / 2)`` and summing to 1, so ``Var g(x) = 1`` at
    every point and ``Cov(g(x), g(y))`` approximates ``exp(-|x - y|^2 / (2 length_scale^2))``
    (periodised, truncated at ``modes``).
    """

    length_scale: float = 0.1
    modes: int = 8

    def __post_init__(self):
        if not self.length_scale > 0:
            raise UserError(f"length_scale must be > 0, got {self.length_scale}")

    def _weights(self) -> np.ndarray:
        m = np.arange(-self.modes, self.modes + 1)[:, None]
        n = np.arange(self.modes + 1)[None, :]
        half = (n > 0) | ((n == 0) & (m > 0))
        w2 = np.where(half, np.exp(-((2 * np.pi * self.length_scale) ** 2) * (m**2 + n**2) / 2), 0)
        return np.sqrt(w2 / w2.sum())

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Complex amplitudes ``w (xi - i eta)``, shape (2 modes + 1, modes + 1)."""
        shape = (2 * self.modes + 1, self.modes + 1)
        return self._weights() * (rng.standard_normal(shape) - 1j * rng.standard_normal(shape))

    def evaluate(self, amplitudes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``g`` at the points ``(x_i, y_j)`` for amplitudes (B, 2M+1, M+1): shape (B, len x, len y).

        ``Re sum c_mn e^{2 pi i (m x + n y)}`` is separable: ``Re(Ex^T C Ey)``.
        """
        m = np.arange(-self.modes, self.modes + 1)
        n = np.arange(self.modes + 1)
        ex = np.exp(2j * np.pi * np.outer(m, x))  # (2M+1, len x)
        ey = np.exp(2j * np.pi * np.outer(n, y))  # (M+1, len y)
        return np.real(ex.T @ amplitudes @ ey)


@dataclass(frozen=True)
class Darcy(AbstractPDESystem):
    """``-div(a grad u) = f``, ``a = kappa exp(sigma g)``; see the module docstring.

    Parameters stored per sample: ``sigma`` and the realised ``contrast`` ``max a / min a`` on
    the grid. Larger ``sigma`` means higher contrast and more conjugate-gradient iterations
    (about ``sqrt(contrast)``).
    """

    name: ClassVar[str] = "darcy"
    parameter_names: ClassVar[tuple[str, ...]] = ("sigma", "contrast")
    input_names: ClassVar[tuple[str, ...]] = ("f", "a")
    description: ClassVar[str] = "-div(a grad u) = f, a = kappa exp(sigma g), g a Gaussian field"
    equation: ClassVar[str] = EQUATION
    sigma_range: tuple[float, float] = (0.3, 1.0)
    kappa: float = 0.01
    permeability: LogNormalField = field(default_factory=LogNormalField)

    def __post_init__(self):
        if isinstance(self.permeability, dict):  # from a study file or config(): its fields
            valid = {"length_scale", "modes"}
            unknown = sorted(set(self.permeability) - valid)
            if unknown:
                raise UserError(
                    f"unknown permeability option {unknown[0]!r}; valid: length_scale, modes"
                )
            object.__setattr__(self, "permeability", LogNormalField(**self.permeability))
        check_range(
            "sigma_range (the log-permeability's amplitude)",
            self.sigma_range,
            low=0.0,
            strict=False,
        )
        if not self.kappa > 0:
            raise UserError(f"kappa must be > 0 (a positive permeability), got {self.kappa}")

    def config(self) -> dict:
        out = super().config()
        out["permeability"] = {
            "length_scale": self.permeability.length_scale,
            "modes": self.permeability.modes,
        }
        return out

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.uniform(*self.sigma_range)])

    def coefficients(self, parameters: np.ndarray, f_hat: np.ndarray) -> np.ndarray:
        raise NotImplementedError("Darcy's coefficient is a field: see _solve_batch")

    def permeability_at(
        self, amplitudes: np.ndarray, sigma: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """``a`` at the points ``(x_i, y_j)``, shape (B, len x, len y)."""
        g = self.permeability.evaluate(amplitudes, x, y)
        return self.kappa * np.exp(np.asarray(sigma)[:, None, None] * g)

    def _solve_batch(self, rngs, indices, resolution: int, dtype) -> Samples:
        source = np.stack([self.source.draw(r, int(i)) for r, i in zip(rngs, indices, strict=True)])
        sigma = np.stack([self.draw(r) for r in rngs])[:, 0]
        field_amplitudes = np.stack([self.permeability.draw(r) for r in rngs])
        grid = np.arange(resolution) / resolution
        f = self.source.evaluate(source, resolution)
        f /= f.max(axis=(-2, -1), keepdims=True)
        a = self.permeability_at(field_amplitudes, sigma, grid, grid)
        f_hat = _spectral.rfft2(f)
        keep = _spectral.band_mask(resolution)
        keep[0, 0] = False  # the null space: f projected onto zero mean, u of zero mean
        f_hat = f_hat * keep
        u_hat = np.empty_like(f_hat)
        for lo in range(0, len(rngs), BLOCK):  # small blocks keep the arrays in cache
            block = slice(lo, lo + BLOCK)
            u_hat[block] = conjugate_gradients(a[block], f_hat[block], keep)
        b = len(rngs)
        inputs = np.empty((b, 2, resolution, resolution), dtype=dtype)
        inputs[:, 0] = _spectral.irfft2(f_hat, resolution)
        inputs[:, 1] = a
        outputs = _spectral.irfft2(u_hat, resolution)[:, None].astype(dtype)
        mean = a.mean(axis=(-2, -1))
        coefficients = np.zeros((b, 6))
        coefficients[:, 0] = coefficients[:, 1] = mean
        contrast = a.max(axis=(-2, -1)) / a.min(axis=(-2, -1))
        return Samples(inputs, outputs, coefficients, np.stack([sigma, contrast], axis=1))


def darcy_operator(a: np.ndarray, u_hat: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``-div(a grad u)`` in Fourier space (rfft2 layout), restricted to the modes ``keep``."""
    resolution = a.shape[-2]
    kx, ky = _spectral.wavenumbers(resolution)
    ux = _spectral.irfft2(1j * kx * u_hat, resolution)
    uy = _spectral.irfft2(1j * ky * u_hat, resolution)
    flux_x, flux_y = _spectral.rfft2(a * ux), _spectral.rfft2(a * uy)
    return -(1j * kx * flux_x + 1j * ky * flux_y) * keep


def conjugate_gradients(a: np.ndarray, f_hat: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Solve ``-div(a grad u) = f`` on the modes ``keep`` for a batch: ``u_hat`` (B, H, H//2+1).

    Preconditioned with ``M^-1 = a^-1/2 (-Lap)^-1 a^-1/2`` (each product on the grid, projected
    on ``keep``: symmetric positive definite, and exact for a constant ``a``), which cuts the
    iterations about fourfold against ``(-Lap)^-1`` alone at a contrast of 100 (38 vs ~150, at
    twice the FFTs per iteration). Run per sample until ``||r|| <= RTOL ||f||`` in the grid L2
    norm (Parseval-weighted sums over the half spectrum); converged samples leave the batch.

    Raises:
        RuntimeError: a sample has not converged in ``MAX_ITERATIONS`` (a contrast far outside
            the ranges this generator is meant for).
    """
    resolution = a.shape[-2]
    kx, ky = _spectral.wavenumbers(resolution)
    weights = _spectral.parseval_weights(resolution)
    inverse_laplacian = np.where(keep, 1.0 / np.where(keep, kx**2 + ky**2, 1.0), 0.0)
    root = 1.0 / np.sqrt(a)

    def dot(p, q):
        return np.sum(weights * np.real(np.conj(p) * q), axis=(-2, -1))

    def precondition(r, where):
        x = _spectral.rfft2(root[where] * _spectral.irfft2(r, resolution)) * inverse_laplacian
        return _spectral.rfft2(root[where] * _spectral.irfft2(x, resolution)) * keep

    everything = np.arange(len(a))
    u = np.zeros_like(f_hat)
    r = f_hat.copy()
    p = precondition(r, everything)
    rz = dot(r, p)
    target = RTOL**2 * dot(f_hat, f_hat)
    active = np.flatnonzero(dot(r, r) > target)
    for _ in range(MAX_ITERATIONS):
        if active.size == 0:
            return u
        ap = darcy_operator(a[active], p[active], keep)
        alpha = rz[active] / dot(p[active], ap)
        u[active] += alpha[:, None, None] * p[active]
        r[active] -= alpha[:, None, None] * ap
        z = precondition(r[active], active)
        rz_new = dot(r[active], z)
        p[active] = z + (rz_new / rz[active])[:, None, None] * p[active]
        rz[active] = rz_new
        active = active[dot(r[active], r[active]) > target[active]]
    raise RuntimeError(
        f"darcy: conjugate gradients did not reach a relative residual {RTOL:g} in "
        f"{MAX_ITERATIONS} iterations for {active.size} sample(s); lower sigma_range"
    )
