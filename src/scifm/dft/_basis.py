"""Plane-wave basis: ``|k+G|^2 / 2 <= ecut`` at each k-point, and the FFT grid that holds it.

The FFT grid is chosen as ABINIT chooses it (``boxcutmin = 2``): in each direction the smallest
size made of the factors 2, 3 and 5 for which the sphere of radius ``2 sqrt(2 ecut)`` (the
density's components) fits in the box, i.e. ``N_i >= 4 sqrt(2 ecut) |a_i| / 2 pi``. Products
of orbitals are then exact on the grid (no aliasing) and the XC energy is evaluated on the same
points as ABINIT's, which is what agreement to 1e-6 Ha needs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from scifm._checks import UserError
from scifm.dft._crystal import Crystal, KPoints


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def fft_grid(lattice: np.ndarray, ecut: float) -> tuple[int, int, int]:
    """ABINIT's FFT grid for ``ecut`` (see the module docstring)."""
    g_max = math.sqrt(2 * ecut)
    sizes = []
    for a in np.linalg.norm(lattice, axis=1):
        n = math.ceil(4 * g_max * a / (2 * math.pi) - 1e-9)
        while not _smooth(n):
            n += 1
        sizes.append(n)
    return tuple(sizes)


@dataclasses.dataclass(frozen=True, eq=False)
class PlaneWaves:
    """The plane waves of every k-point, padded to one length ``npw`` (``mask`` marks the real
    ones), and the FFT grid.

    Attributes:
        grid: FFT grid shape.
        miller: (nk, npw, 3) integer G of each plane wave (zero where padded).
        mask: (nk, npw) True for a real plane wave.
        kpg: (nk, npw, 3) Cartesian k + G (1/bohr).
        flat: (nk, npw) index of G in the flattened FFT grid.
        count: (nk,) plane waves per k-point.
    """

    crystal: Crystal
    kpoints: KPoints
    ecut: float
    grid: tuple[int, int, int]
    miller: np.ndarray
    mask: np.ndarray
    kpg: np.ndarray
    flat: np.ndarray
    count: np.ndarray

    @classmethod
    def build(cls, crystal: Crystal, kpoints: KPoints, ecut: float, grid=None) -> PlaneWaves:
        if not (isinstance(ecut, int | float) and math.isfinite(ecut) and ecut > 0):
            raise UserError(f"the cut-off must be a positive number of Hartree, got {ecut}")
        grid = tuple(grid) if grid is not None else fft_grid(crystal.lattice, ecut)
        b = crystal.reciprocal
        reach = np.ceil(
            (math.sqrt(2 * ecut) + np.linalg.norm(kpoints.reduced @ b, axis=1).max())
            * np.linalg.norm(crystal.lattice, axis=1)
            / (2 * math.pi)
        ).astype(int)
        ranges = [np.arange(-r, r + 1) for r in reach]
        candidates = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
        chosen = []
        for k in kpoints.reduced:
            kpg = (candidates + k) @ b
            keep = 0.5 * np.sum(kpg**2, axis=1) <= ecut + 1e-12
            chosen.append(candidates[keep])
        count = np.array([len(c) for c in chosen])
        if count.min() == 0:
            raise UserError(f"the cut-off {ecut} Ha is too small: some k-point has no plane wave")
        npw = int(count.max())
        nk = len(kpoints)
        miller = np.zeros((nk, npw, 3), dtype=np.int64)
        mask = np.zeros((nk, npw), dtype=bool)
        for i, c in enumerate(chosen):
            miller[i, : len(c)] = c
            mask[i, : len(c)] = True
        if np.any(np.abs(miller).max(axis=(0, 1)) * 2 >= np.array(grid)):
            raise UserError(f"the FFT grid {grid} cannot hold the plane waves of ecut {ecut} Ha")
        kpg = (miller + kpoints.reduced[:, None, :]) @ b
        wrapped = np.mod(miller, np.array(grid))
        flat = np.ravel_multi_index(tuple(np.moveaxis(wrapped, -1, 0)), grid)
        return cls(crystal, kpoints, float(ecut), grid, miller, mask, kpg, flat, count)

    def _key(self):
        # What fixes the basis; the atoms' positions do not (they are a traced argument of
        # every Hamiltonian method), so moving atoms reuses compiled code.
        k = self.kpoints
        return (self.grid, self.ecut, self.crystal.lattice.tobytes(), k.reduced.tobytes(), k.weights.tobytes())

    def __hash__(self):  # a static field of Hamiltonian: jit caches on it
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, PlaneWaves) and self._key() == other._key()

    @property
    def npw(self) -> int:
        return self.miller.shape[1]

    def grid_vectors(self) -> np.ndarray:
        """(N1, N2, N3, 3) Cartesian G of every FFT grid point (FFT frequency order)."""
        m = np.stack(
            np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in self.grid], indexing="ij"), axis=-1
        )
        return m @ self.crystal.reciprocal
