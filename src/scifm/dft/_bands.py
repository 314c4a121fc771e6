"""Band structures and densities of states at a converged density (non-self-consistent)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from scifm._checks import UserError
from scifm.dft._basis import PlaneWaves
from scifm.dft._crystal import BOHR_PER_ANGSTROM, HARTREE_EV, KPoints
from scifm.dft._hamiltonian import Hamiltonian
from scifm.dft._result import GroundState
from scifm.dft._sharding import per_kpoint

# Special points of the fcc primitive cell (lattice rows a/2 (0,1,1), (1,0,1), (1,1,0)), in
# reduced coordinates of its reciprocal lattice (Setyawan and Curtarolo 2010, as ASE).
FCC_POINTS = {
    "G": (0.0, 0.0, 0.0),
    "X": (0.5, 0.0, 0.5),
    "L": (0.5, 0.5, 0.5),
    "W": (0.5, 0.25, 0.75),
    "K": (0.375, 0.375, 0.75),
    "U": (0.625, 0.25, 0.625),
}
FCC_PATH = "LGXWKG"


@dataclasses.dataclass
class Bands:
    """Eigenvalues along a k-path.

    Attributes:
        kpoints: (n, 3) reduced k-points; ``distance`` their cumulative path length (1/bohr).
        labels: ``(index, name)`` of the special points.
        eigenvalues: (n, bands) in Hartree.
        reference: the energy set to zero in plots (valence top or Fermi level), Hartree.
    """

    kpoints: np.ndarray
    distance: np.ndarray
    labels: list
    eigenvalues: np.ndarray
    reference: float

    def to_json(self) -> dict:
        return {
            "kpoints": self.kpoints.tolist(),
            "distance": self.distance.tolist(),
            "labels": [[int(i), name] for i, name in self.labels],
            "eigenvalues_hartree": self.eigenvalues.tolist(),
            "reference_hartree": self.reference,
        }

    def at(self, name: str) -> np.ndarray:
        """Eigenvalues (eV, relative to the reference) at the first special point ``name``."""
        for i, label in self.labels:
            if label == name:
                return (self.eigenvalues[i] - self.reference) * HARTREE_EV
        raise UserError(f"no point {name!r} on this path")


def path_points(gs: GroundState, path: str | None = None, points_per_segment: int = 20):
    """Reduced k-points along ``path`` (letters of special points, ``G`` for Gamma), with
    their cumulative distance and labels. Fcc lattices use :data:`FCC_POINTS`; other lattices
    take ASE's special points (needs ``scifm[dft]``)."""
    crystal = gs.hamiltonian.basis.crystal
    special = _special_points(crystal)
    path = path or (FCC_PATH if special is FCC_POINTS else None)
    if path is None:
        raise UserError("give a k-path (letters of special points) for this lattice")
    unknown = [c for c in path if c not in special]
    if unknown:
        raise UserError(
            f"unknown special point(s) {''.join(unknown)} in the path; this lattice has "
            f"{', '.join(special)}"
        )
    if len(path) < 2:
        raise UserError("a k-path needs at least two special points, e.g. LGX")
    reduced, labels = [], []
    for a, b in zip(path[:-1], path[1:], strict=True):
        start, end = np.array(special[a]), np.array(special[b])
        labels.append((len(reduced), a))
        for t in np.linspace(0, 1, points_per_segment, endpoint=False):
            reduced.append(start + t * (end - start))
    labels.append((len(reduced), path[-1]))
    reduced.append(np.array(special[path[-1]]))
    reduced = np.array(reduced)
    cart = reduced @ crystal.reciprocal
    distance = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(cart, axis=0), axis=1))])
    return reduced, distance, labels


def _special_points(crystal):
    if crystal.is_fcc_primitive:
        return FCC_POINTS
    try:
        import ase.geometry
    except ImportError:
        raise UserError("k-paths for this lattice need ASE: pip install 'scifm[dft]'") from None
    cell = ase.geometry.Cell(crystal.lattice / BOHR_PER_ANGSTROM)
    return {("G" if k == "G" else k): tuple(v) for k, v in cell.bandpath().special_points.items()}


@eqx.filter_jit
def _eigenvalues(h: Hamiltonian, v, positions):
    return per_kpoint(jnp.linalg.eigvalsh, h.sharding)(h.matrices(v, positions))


def non_self_consistent(gs: GroundState, kpoints: KPoints, bands: int) -> np.ndarray:
    """Eigenvalues (nk, bands) at ``kpoints`` with the ground state's potential."""
    h = gs.hamiltonian
    v = h.effective_potential(gs.density, jnp.asarray(gs.positions))
    basis = PlaneWaves.build(h.basis.crystal, kpoints, h.basis.ecut, grid=h.basis.grid)
    if bands > int(basis.count.min()):
        raise UserError(f"{bands} bands exceed the {basis.count.min()} plane waves of a k-point")
    path_h = Hamiltonian.build(basis, h.xc, {p.symbol: p for p in h.pseudos})
    return np.asarray(_eigenvalues(path_h, v, jnp.asarray(gs.positions)))[:, :bands]


def _reference(gs: GroundState) -> float:
    """The energy plots set to zero: the Fermi level with smearing, else the valence top."""
    if gs.temperature > 0:
        return gs.fermi_level
    return float(np.max(gs.eigenvalues[:, : gs.hamiltonian.electrons // 2]))


def band_structure(gs: GroundState, path: str | None = None, *, bands: int | None = None,
                   points_per_segment: int = 20) -> Bands:
    """Bands along ``path`` (default L-G-X-W-K-G for fcc), zero at the valence top (T = 0)
    or the Fermi level."""
    reduced, distance, labels = path_points(gs, path, points_per_segment)
    nb = bands or gs.coeffs.shape[-1] + 4
    eig = non_self_consistent(gs, KPoints.path(reduced), nb)
    reference = _reference(gs)
    return Bands(reduced, distance, labels, eig, reference)


def density_of_states(gs: GroundState, *, mesh=(8, 8, 8), bands: int | None = None,
                      width: float = 0.1, points: int = 1000):
    """Density of states (states / eV / cell, both spins) from a non-self-consistent
    ``mesh``, Gaussian-broadened by ``width`` eV; energies in eV relative to the reference of
    :func:`band_structure`. Returns ``(energies, dos)``."""
    kpoints = KPoints.monkhorst_pack(mesh)
    nb = bands or gs.coeffs.shape[-1] + 4
    eig = non_self_consistent(gs, kpoints, nb)
    reference = _reference(gs)
    e = (eig - reference) * HARTREE_EV
    energies = np.linspace(e.min() - 5 * width, e.max() + 5 * width, points)
    gauss = np.exp(-0.5 * ((energies[:, None, None] - e[None]) / width) ** 2) / (
        width * np.sqrt(2 * np.pi)
    )
    dos = 2 * np.einsum("k,ekb->e", kpoints.weights, gauss)
    return energies, dos
