"""Crystals: a lattice, atoms at reduced positions, and the k-point meshes over them.

Hartree atomic units inside (bohr, Hartree); Angstrom and eV only at the user boundary
(``Crystal.builtin(..., a=ANGSTROM)``, ``from_ase``), as ASE and the established codes do.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from scifm._checks import UserError, check_positive

BOHR_PER_ANGSTROM = 1.0 / 0.529177210903  # CODATA 2018
HARTREE_EV = 27.211386245988  # CODATA 2018

# Built-in structures: name -> (lattice kind, element, conventional cubic constant in Angstrom).
# The constants are the usual room-temperature experimental values.
BUILTIN = {
    "si": ("diamond", "Si", 5.431),
    "c": ("diamond", "C", 3.567),
    "al": ("fcc", "Al", 4.05),
}


_FCC_SITES = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


@dataclasses.dataclass(frozen=True, eq=False)
class Crystal:
    """A periodic crystal.

    Attributes:
        lattice: (3, 3) array, one lattice vector per row, in bohr.
        symbols: the element of each atom.
        positions: (n_atoms, 3) reduced (fractional) coordinates.
    """

    lattice: np.ndarray
    symbols: tuple[str, ...]
    positions: np.ndarray

    def __post_init__(self):
        lattice = np.asarray(self.lattice, dtype=np.float64)
        positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        if lattice.shape != (3, 3) or not np.all(np.isfinite(lattice)):
            raise UserError(f"lattice must be a finite 3x3 array, got shape {lattice.shape}")
        if abs(np.linalg.det(lattice)) < 1e-8:
            raise UserError("the lattice vectors are linearly dependent (zero cell volume)")
        if len(self.symbols) != len(positions) or not len(positions):
            raise UserError(
                f"a crystal needs one symbol per atom, got {len(self.symbols)} symbols "
                f"for {len(positions)} positions"
            )
        object.__setattr__(self, "lattice", lattice)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "symbols", tuple(str(s) for s in self.symbols))

    # --- construction ---

    @classmethod
    def fcc(cls, symbol: str, a: float, *, cubic: bool = False) -> Crystal:
        """Face-centred cubic, one atom in the primitive cell (four in the ``cubic``
        conventional cell); ``a`` the cubic constant (bohr)."""
        check_positive("the lattice constant", a)
        if cubic:
            return cls(a * np.eye(3), (symbol,) * 4, _FCC_SITES)
        return cls(a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), (symbol,), [[0, 0, 0]])

    @classmethod
    def diamond(cls, symbol: str, a: float, *, cubic: bool = False) -> Crystal:
        """Diamond: fcc with atoms at reduced (0,0,0) and (1/4,1/4,1/4) (eight atoms in the
        ``cubic`` conventional cell); ``a`` in bohr."""
        check_positive("the lattice constant", a)
        if cubic:
            sites = np.concatenate([_FCC_SITES, _FCC_SITES + 0.25])
            return cls(a * np.eye(3), (symbol,) * 8, sites)
        lattice = a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
        return cls(lattice, (symbol, symbol), [[0, 0, 0], [0.25, 0.25, 0.25]])

    @classmethod
    def builtin(cls, name: str, a: float | None = None) -> Crystal:
        """One of :data:`BUILTIN` (``si``, ``c``, ``al``); ``a`` the cubic constant in Angstrom
        (default the experimental one)."""
        if name.lower() not in BUILTIN:
            raise UserError(
                f"unknown structure {name!r}; built-in: {', '.join(BUILTIN)} (or a structure file)"
            )
        kind, symbol, default = BUILTIN[name.lower()]
        a = default if a is None else a
        check_positive("the lattice constant", a)
        return getattr(cls, kind)(symbol, a * BOHR_PER_ANGSTROM)

    @classmethod
    def from_ase(cls, atoms) -> Crystal:
        """From an ASE ``Atoms`` (Angstrom), periodic in all three directions."""
        if not all(atoms.pbc):
            raise UserError("the structure must be periodic in all three directions")
        return cls(
            np.asarray(atoms.cell) * BOHR_PER_ANGSTROM,
            tuple(atoms.get_chemical_symbols()),
            atoms.get_scaled_positions(wrap=False),
        )

    @classmethod
    def read(cls, path: str | os.PathLike) -> Crystal:
        """Read a structure file with ASE (CIF, POSCAR, xyz with a cell, ...)."""
        try:
            import ase.io
        except ImportError:
            raise UserError("reading structure files needs ASE: pip install 'scifm[dft]'") from None
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such structure file")
        try:
            atoms = ase.io.read(path)
        except Exception as e:  # noqa: BLE001 - ASE raises many kinds; the user needs one line
            raise UserError(f"{path}: not a structure file ASE can read ({e})") from None
        return cls.from_ase(atoms)

    def supercell(self, n1: int, n2: int, n3: int) -> Crystal:
        """The (n1, n2, n3) supercell."""
        shifts = np.array([(i, j, k) for i in range(n1) for j in range(n2) for k in range(n3)])
        reps = np.array([n1, n2, n3])
        positions = ((self.positions[None] + shifts[:, None]) / reps).reshape(-1, 3)
        return Crystal(self.lattice * reps[:, None], self.symbols * len(shifts), positions)

    def with_positions(self, positions) -> Crystal:
        return dataclasses.replace(self, positions=np.asarray(positions))

    # --- geometry ---

    @property
    def is_fcc_primitive(self) -> bool:
        """Whether the lattice is the fcc primitive cell as :meth:`fcc` builds it."""
        a = self.lattice
        return bool(np.allclose(a, a[0, 1] * (1 - np.eye(3))) and a[0, 1] > 0)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def reciprocal(self) -> np.ndarray:
        """Reciprocal lattice vectors (rows), with ``a_i . b_j = 2 pi delta_ij``."""
        return 2 * np.pi * np.linalg.inv(self.lattice).T

    @property
    def cartesian(self) -> np.ndarray:
        return self.positions @ self.lattice


def check_mesh(mesh) -> tuple[int, int, int]:
    """``mesh`` as three positive integers, or a one-line refusal."""
    mesh = tuple(int(n) for n in mesh)
    if len(mesh) != 3 or min(mesh) < 1:
        raise UserError(f"a k-mesh is three positive integers N1,N2,N3, got {mesh}")
    return mesh


@dataclasses.dataclass(frozen=True, eq=False)
class KPoints:
    """k-points in reduced coordinates of the reciprocal lattice, with weights summing to 1."""

    reduced: np.ndarray
    weights: np.ndarray

    @classmethod
    def monkhorst_pack(
        cls, mesh: tuple[int, int, int], shift=(0.0, 0.0, 0.0), time_reversal: bool = True
    ) -> KPoints:
        """The ``mesh`` grid ``(i + shift) / n`` (Gamma-centred for a zero shift, as ABINIT's
        ``ngkpt`` with ``shiftk 0 0 0``); ``time_reversal`` merges k with -k (equal energies
        without spin-orbit coupling), which keeps the total energy exact."""
        mesh = check_mesh(mesh)
        shift = np.asarray(shift, dtype=np.float64)
        grid = np.stack(
            np.meshgrid(*[np.arange(n) for n in mesh], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        points = (grid + shift) / np.array(mesh)
        points = points - np.round(points)  # into [-1/2, 1/2)
        weights = np.full(len(points), 1.0 / len(points))
        if not time_reversal:
            return cls(points, weights)
        kept, kept_weights = [], []
        for k, w in zip(points, weights, strict=True):
            for j, q in enumerate(kept):
                d = k + q
                if np.allclose(d, np.round(d), atol=1e-9):
                    kept_weights[j] += w
                    break
            else:
                kept.append(k)
                kept_weights.append(w)
        return cls(np.array(kept), np.array(kept_weights))

    @classmethod
    def path(cls, reduced) -> KPoints:
        """Given points (for band structures): equal weights, no reduction."""
        reduced = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
        return cls(reduced, np.full(len(reduced), 1.0 / len(reduced)))

    def __len__(self) -> int:
        return len(self.reduced)
