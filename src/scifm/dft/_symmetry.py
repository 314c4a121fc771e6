"""Space-group symmetry from spglib: irreducible k-points, and the density and forces made
symmetric again.

An operation ``{R|t}`` maps reduced positions ``x -> R x + t``. A crystal's Kohn-Sham energies
are equal at ``k`` and at ``R^T k`` (and at ``-k``, time reversal), so a Gamma-centred mesh
needs only one k-point per orbit, weighted by the orbit's size (as ABINIT's ``kptopt 1``).
The density from those k-points is then symmetrised,
``rho(G') = 1/N sum_{R,t} rho(G) exp(2 pi i G.t)`` with ``G = R^-T G'``, and so are the forces,
``F_{S(a)} = 1/N sum R_cart F_a``. Only operations that map the mesh onto itself are used, so a
mesh that breaks a symmetry (4x4x2 in a cubic cell) gives the same energies as the full mesh.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from scifm._checks import UserError
from scifm.dft._crystal import Crystal, KPoints, check_mesh


def _spglib():
    try:
        import spglib
    except ImportError as error:  # pragma: no cover - spglib is in the dft and dev extras
        raise UserError(
            "k-point symmetry needs spglib: pip install 'scifm[dft]' (or SCF(symmetry=False))"
        ) from error
    if hasattr(spglib, "error"):
        spglib.error.OLD_ERROR_HANDLING = False  # raise, rather than return None
    return spglib


@dataclasses.dataclass(frozen=True, eq=False)
class Symmetry:
    """Space-group operations of a crystal in reduced coordinates.

    Attributes:
        rotations: (n, 3, 3) integer ``R``; translations: (n, 3) ``t``.
        atoms: (n, natoms) the atom each operation takes atom ``a`` to.
    """

    rotations: np.ndarray
    translations: np.ndarray
    atoms: np.ndarray

    @classmethod
    def of(cls, crystal: Crystal, symprec: float = 1e-5) -> Symmetry:
        """The space group spglib finds (``symprec`` in bohr)."""
        spglib = _spglib()
        species = {s: i for i, s in enumerate(dict.fromkeys(crystal.symbols))}
        numbers = [species[s] for s in crystal.symbols]
        try:
            data = spglib.get_symmetry((crystal.lattice, crystal.positions, numbers), symprec=symprec)
        except Exception as error:  # noqa: BLE001 - spglib's error types vary by version
            raise UserError(f"spglib found no space group ({error}); use SCF(symmetry=False)") from None
        rotations, translations = np.asarray(data["rotations"]), np.asarray(data["translations"])
        moved = np.einsum("nij,aj->nai", rotations, crystal.positions) + translations[:, None, :]
        diff = moved[:, :, None, :] - crystal.positions[None, None, :, :]
        close = np.all(np.abs(diff - np.round(diff)) < 1e-4, axis=-1)
        close &= np.array(numbers)[None, :, None] == np.array(numbers)[None, None, :]
        if not np.all(close.sum(axis=-1) == 1):
            raise UserError("spglib's operations do not map the atoms onto each other; raise symprec")
        return cls(rotations, translations, np.argmax(close, axis=-1))

    def __len__(self) -> int:
        return len(self.rotations)

    def _key(self):
        return (self.rotations.tobytes(), self.translations.tobytes(), self.atoms.tobytes())

    def __hash__(self):  # a static field of Hamiltonian
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Symmetry) and self._key() == other._key()

    def for_mesh(self, mesh) -> Symmetry:
        """The operations that map the Gamma-centred ``mesh`` onto itself."""
        n = np.array(check_mesh(mesh), dtype=np.float64)
        keep = []
        for r in self.rotations:
            m = np.diag(n) @ r.T @ np.diag(1 / n)
            keep.append(np.allclose(m, np.round(m)))
        keep = np.array(keep)
        return Symmetry(self.rotations[keep], self.translations[keep], self.atoms[keep])

    def irreducible(self, mesh) -> KPoints:
        """One k-point per orbit of the Gamma-centred ``mesh`` (time reversal included)."""
        mesh = check_mesh(mesh)
        n = np.array(mesh)
        grid = np.stack(np.meshgrid(*[np.arange(v) for v in mesh], indexing="ij"), -1).reshape(-1, 3)
        maps = [np.round(np.diag(n) @ r.T @ np.diag(1 / n)).astype(int) for r in self.rotations]
        owner = np.full(len(grid), -1)
        for i, g in enumerate(grid):
            if owner[i] >= 0:
                continue
            for m in maps:
                for sign in (1, -1):
                    image = np.mod(sign * (m @ g), n)
                    owner[np.ravel_multi_index(tuple(image), mesh)] = i
        representatives, counts = np.unique(owner, return_counts=True)
        points = grid[representatives] / n
        points = points - np.round(points)
        return KPoints(points, counts / len(grid))

    def density_maps(self, basis) -> tuple[np.ndarray, np.ndarray]:
        """For the density on ``basis``'s FFT grid: per operation, the flat index of
        ``G = R^-T G'`` for every ``G'`` and the factor ``exp(2 pi i G.t) / N`` (zero outside
        the sphere ``|G'| <= 2 sqrt(2 ecut)`` that holds the density)."""
        grid = basis.grid
        miller = np.stack(
            np.meshgrid(*[np.fft.fftfreq(v, 1 / v) for v in grid], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        radius = 2 * math.sqrt(2 * basis.ecut) + 1e-9
        inside = np.linalg.norm(miller @ basis.crystal.reciprocal, axis=1) <= radius
        index, factor = [], []
        for r, t in zip(self.rotations, self.translations, strict=True):
            g = np.round(miller @ np.linalg.inv(r)).astype(int)  # rows: (R^-T G')^T
            index.append(np.ravel_multi_index(tuple(np.mod(g, np.array(grid)).T), grid))
            factor.append(np.where(inside, np.exp(2j * np.pi * g @ t), 0.0) / len(self))
        return np.array(index), np.array(factor)

    def symmetrise_forces(self, forces: np.ndarray, lattice: np.ndarray) -> np.ndarray:
        """``F_{S(a)} = 1/N sum_S R_cart F_a``, ``R_cart = A^T R A^-T`` (A: lattice rows)."""
        out = np.zeros_like(forces)
        inverse = np.linalg.inv(lattice.T)
        for r, atoms in zip(self.rotations, self.atoms, strict=True):
            rotation = lattice.T @ r @ inverse
            out[atoms] += forces @ rotation.T
        return out / len(self)
