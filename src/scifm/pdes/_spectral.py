"""Exact Fourier solution of the general constant-coefficient operator on the periodic unit square.

Every system scifm generates is a special case of one operator with six coefficients
(`COEFFICIENT_NAMES`), so one symbol and one solve serve all of them and datasets of different
systems share one coefficient layout::

    L u = -(k11 u_xx + 2 k12 u_xy + k22 u_yy) + vx u_x + vy u_y - omega u = f

Arrays hold ``u[i, j] = u(x_i, y_j)`` with ``x_i = i / H`` along axis 0 and ``y_j = j / H`` along
axis 1. For ``u = exp(2 pi i (m x + n y))`` the operator multiplies by the symbol::

    L^(m, n) = k11 kx^2 + 2 k12 kx ky + k22 ky^2 + i (vx kx + vy ky) - omega,  kx = 2 pi m, ky = 2 pi n

**What "exact" means here.** A grid function is identified with its trigonometric interpolant.
The Nyquist modes (``m = H/2`` or ``n = H/2``) are removed from every field: for them a first
derivative of the real interpolant is not defined by the grid values. On the remaining modes the
solve ``u^ = f^ / L^`` is exact, so the stored ``(f, u)`` satisfy ``L u = f`` to round-off with
derivatives taken spectrally, and to ``O(h^2)`` with centred finite differences.

**Singular modes.** Where ``|L^| <= SINGULAR_RTOL * max |L^|`` the operator has a null space
(the constant mode for Poisson and advection-diffusion, the shell ``0.01 |k|^2 = omega`` at an
exactly resonant Helmholtz frequency). There the equation is solvable only if ``f^ = 0``, and the
solution is unique only up to the null space. The solve projects ``f`` onto the range of ``L``
(removes those modes, e.g. the mean) and returns the minimum-norm solution (``u^ = 0`` there,
e.g. zero mean). The projected ``f`` is returned and is what datasets store.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from scifm._checks import UserError

COEFFICIENT_NAMES = ("k11", "k22", "k12", "vx", "vy", "omega")
EQUATION = (
    "-(k11*u_xx + 2*k12*u_xy + k22*u_yy) + vx*u_x + vy*u_y - omega*u = f "
    "on the periodic unit square [0,1)^2; field[i, j] = value at (x, y) = (i/H, j/H)"
)
SINGULAR_RTOL = 1e-10
_WORKERS = 1  # FFT threads per call (data.generate solves chunks on parallel threads)


def wavenumbers(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Angular wavenumbers of the real 2-D FFT: ``kx`` shape (H, 1), ``ky`` shape (1, H//2 + 1)."""
    kx = 2 * np.pi * np.fft.fftfreq(resolution, d=1.0 / resolution)
    ky = 2 * np.pi * np.fft.rfftfreq(resolution, d=1.0 / resolution)
    return kx[:, None], ky[None, :]


def band_mask(resolution: int) -> np.ndarray:
    """True on the modes kept in every field: all but the Nyquist row and column."""
    keep = np.ones((resolution, resolution // 2 + 1), dtype=bool)
    keep[resolution // 2, :] = False
    keep[:, resolution // 2] = False
    return keep


def parseval_weights(resolution: int) -> np.ndarray:
    """Weights ``w`` with ``sum(u**2) = sum(w * |rfft2(u)|**2) / H**2`` for real ``u`` (no Nyquist)."""
    w = np.full((1, resolution // 2 + 1), 2.0)
    w[0, 0] = 1.0
    return w


def symbol_parts(coefficients: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Real and imaginary parts of the symbol of ``L``, each (B, H, H//2+1); imaginary None if 0."""
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != len(COEFFICIENT_NAMES):
        raise UserError(f"coefficients must have shape (B, 6) {COEFFICIENT_NAMES}, got {c.shape}")
    kx, ky = wavenumbers(resolution)
    k11, k22, k12, vx, vy, omega = (c[:, i, None, None] for i in range(6))
    real = k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2 - omega
    imag = vx * kx + vy * ky if np.any(c[:, 3:5]) else None
    return real, imag


def symbol(coefficients: np.ndarray, resolution: int) -> np.ndarray:
    """The Fourier symbol of ``L`` for each row of ``coefficients`` (B, 6): shape (B, H, H//2+1)."""
    real, imag = symbol_parts(coefficients, resolution)
    return real + 0j if imag is None else real + 1j * imag


def rfft2(x: np.ndarray) -> np.ndarray:
    """Real 2-D FFT over the last two axes (float64, one thread)."""
    return scipy.fft.rfft2(np.asarray(x, dtype=np.float64), workers=_WORKERS)


def irfft2(x_hat: np.ndarray, resolution: int) -> np.ndarray:
    """Inverse of :func:`rfft2` onto an H x H grid."""
    return scipy.fft.irfft2(x_hat, s=(resolution, resolution), workers=_WORKERS)


def solve_hat(f_hat: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``L u = f`` in Fourier space. Returns ``(f_hat_projected, u_hat)``.

    ``f_hat`` (B, H, H//2+1) is band-limited (Nyquist removed) and projected onto the range of
    ``L`` (singular modes removed); ``u_hat`` is the minimum-norm solution. Inputs are not modified.
    """
    resolution = f_hat.shape[-2]
    real, imag = symbol_parts(coefficients, resolution)
    size2 = real * real if imag is None else real * real + imag * imag
    keep = size2 > SINGULAR_RTOL**2 * size2.max(axis=(-2, -1), keepdims=True)
    keep &= band_mask(resolution)
    safe = np.where(keep, size2, 1.0)
    inverse = np.where(keep, real / safe, 0.0)  # 1 / L^ = conj(L^) / |L^|^2
    if imag is not None:
        inverse = inverse - 1j * np.where(keep, imag / safe, 0.0)
    return f_hat * keep, f_hat * inverse


def solve(f: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact periodic solution of ``L u = f`` for a batch of sources.

    Args:
        f: sources on the grid, shape (B, H, H) (H even).
        coefficients: shape (B, 6), columns ``COEFFICIENT_NAMES``.

    Returns:
        ``(f_projected, u)``, both (B, H, H) float64: the band-limited source projected onto the
        range of the operator (what the equation is exactly solved for) and the minimum-norm
        solution. See the module docstring.
    """
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 3 or f.shape[1] != f.shape[2] or f.shape[1] % 2:
        raise UserError(f"f must have shape (B, H, H) with H even, got {f.shape}")
    f_hat, u_hat = solve_hat(rfft2(f), coefficients)
    return irfft2(f_hat, f.shape[1]), irfft2(u_hat, f.shape[1])
