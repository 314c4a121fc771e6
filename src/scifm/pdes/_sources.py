"""Random sources: a lattice of Gaussian bumps with random sparsity and amplitudes.

The source family of Subramanian et al. 2023: 12 x 12 bumps centred on (0.5, 0.5) with spacing
1/16 and width sigma = 1/32; each bump is on with probability ``1 - vf`` and then has amplitude
``U[1e-3, 1]``; if none is on, one random bump is switched on. ``vf`` cycles over
(0.2, 0.4, 0.6, 0.8) with the sample index, so any contiguous quarter of a dataset is balanced.

The bumps are separable, ``exp(-|x - c|^2 / 2 sigma^2) = gx(x) gy(y)``, so a whole source is
``Gx^T A Gy`` with ``A`` the 12 x 12 amplitude matrix: two small matrix products instead of
144 full-grid exponentials. Distances are periodic (to the nearest image), so each bump is a
smooth periodic function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianBumps:
    """The bump-lattice source family; see the module docstring."""

    lattice: int = 12
    spacing: float = 1.0 / 16
    sigma: float = 1.0 / 32
    centre: float = 0.5
    amplitude_range: tuple[float, float] = (1e-3, 1.0)
    vf_levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)

    def centres(self) -> np.ndarray:
        """Bump centres along one axis, shape (lattice,)."""
        return self.centre + (np.arange(self.lattice) - (self.lattice - 1) / 2) * self.spacing

    def draw(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """Amplitudes of one source, shape (lattice, lattice); index picks ``vf``."""
        vf = self.vf_levels[index % len(self.vf_levels)]
        n = self.lattice * self.lattice
        lo, hi = self.amplitude_range
        on = rng.random(n) > vf
        amplitudes = np.where(on, rng.uniform(lo, hi, n), 0.0)
        if not on.any():
            amplitudes[rng.integers(n)] = rng.uniform(lo, hi)
        return amplitudes.reshape(self.lattice, self.lattice)

    def profiles(self, resolution: int) -> np.ndarray:
        """One-dimensional bump profiles on the grid ``i / H``, shape (lattice, H)."""
        x = np.arange(resolution) / resolution
        d = x[None, :] - self.centres()[:, None]
        d -= np.round(d)  # nearest periodic image
        return np.exp(-(d**2) / (2 * self.sigma**2))

    def evaluate(self, amplitudes: np.ndarray, resolution: int) -> np.ndarray:
        """Sources on the grid for amplitudes (B, lattice, lattice): shape (B, H, H), not normalised.

        ``f[b, i, j] = sum_{p,q} A[b, p, q] g_p(x_i) g_q(y_j)``.
        """
        g = self.profiles(resolution)
        return g.T @ amplitudes @ g
