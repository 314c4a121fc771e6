"""The converged ground state, as both minimisers return it."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm.dft._hamiltonian import Hamiltonian, fermi_dirac
from scifm.dft._occupations import fermi_level


@dataclasses.dataclass
class GroundState:
    """Orbitals, occupations and energies of a converged (or stopped) calculation.

    Attributes:
        hamiltonian: the :class:`Hamiltonian` it was computed with.
        coeffs: (nk, npw, nb) orbitals.
        occupations: (nk, nb) in [0, 1] per spin.
        eigenvalues: (nk, nb) eigenvalues of H in the orbitals' span (Hartree).
        energies: the energy terms (Hartree), ``total_energy`` and ``free_energy`` among them.
        fermi_level: chemical potential (or highest occupied level at T = 0), Hartree.
        temperature: the smearing kT (Hartree).
        steps: iterations (SCF cycles or minimiser steps).
        converged: whether the criterion was met.
        history: the free energy after each step.
    """

    hamiltonian: Hamiltonian
    positions: np.ndarray
    coeffs: jax.Array
    occupations: jax.Array
    eigenvalues: np.ndarray
    energies: dict
    fermi_level: float
    temperature: float
    steps: int
    converged: bool
    history: list = dataclasses.field(default_factory=list)
    diagonalisation: list = dataclasses.field(default_factory=list)

    @property
    def density(self):
        return self.hamiltonian.density(self.coeffs, self.occupations)

    def forces(self) -> np.ndarray:
        """Forces on the atoms (Hartree / bohr, Cartesian) by automatic differentiation of the
        energy in the positions at fixed orbitals and occupations (Hellmann-Feynman: exact at
        self-consistency)."""
        h = self.hamiltonian
        lattice = h.basis.crystal.lattice
        cart = jnp.asarray(self.positions @ lattice)
        gradient = _energy_gradient(h, self.coeffs, self.occupations, cart, self.temperature)
        forces = -np.asarray(gradient)
        if h.symmetry is not None:  # irreducible k-points: only the symmetrised force is exact
            forces = h.symmetry.symmetrise_forces(forces, lattice)
        return forces

    def self_diagonalisation(self) -> dict:
        """How far the orbitals are from eigenvectors and the occupations from Fermi-Dirac:
        the largest off-diagonal |H_ij| in the orbitals' basis, and the largest
        ``|f_i - f_FD(e_i)|`` at the diagonal energies ``e_i = H_ii`` (zero at T = 0 when
        ``f`` is 0/1 in order)."""
        return self_diagonalisation(
            self.hamiltonian, self.coeffs, self.occupations, self.positions, self.temperature
        )

    def summary(self) -> dict:
        """JSON-ready: energies, Fermi level, eigenvalues and occupations per k-point."""
        kpoints = self.hamiltonian.basis.kpoints
        return {
            "total_energy": float(self.energies["total_energy"]),
            "free_energy": float(self.energies["free_energy"]),
            "fermi_level": float(self.fermi_level),
            "energies": {k: float(v) for k, v in self.energies.items()},
            "kpoints": kpoints.reduced.tolist(),
            "kpoint_weights": kpoints.weights.tolist(),
            "eigenvalues": np.asarray(self.eigenvalues).tolist(),
            "occupations": np.asarray(self.occupations).tolist(),
            "steps": self.steps,
            "converged": self.converged,
            **self.self_diagonalisation(),
        }


@eqx.filter_jit
def _energy_gradient(h: Hamiltonian, coeffs, occupations, cart, temperature):
    """d E_total / d (Cartesian positions) at fixed orbitals and occupations, one compiled
    program (eagerly, every operation of the gradient would compile on its own)."""
    to_reduced = jnp.asarray(np.linalg.inv(h.basis.crystal.lattice))

    def energy(x):
        return h.energy_terms(coeffs, occupations, x @ to_reduced, temperature)["total_energy"]

    return jax.grad(energy)(cart)


def subspace_matrices(h: Hamiltonian, coeffs, occupations, positions):
    rho = h.density(coeffs, occupations)
    v = h.effective_potential(rho, positions)
    hc = h.apply(coeffs, v, positions)
    return jnp.einsum("kgi,kgj->kij", jnp.conj(coeffs), hc)


@eqx.filter_jit
def _measures(h: Hamiltonian, coeffs, occupations, positions, temperature):
    sub = subspace_matrices(h, coeffs, occupations, positions)
    diagonal = jnp.real(jnp.diagonal(sub, axis1=1, axis2=2))
    off = jnp.abs(sub - jax.vmap(jnp.diag)(jnp.diagonal(sub, axis1=1, axis2=2)))
    commutator = off * jnp.abs(occupations[:, None, :] - occupations[:, :, None])
    safe = jnp.maximum(temperature, 1e-12)
    mu = fermi_level(diagonal, h.weights, h.electrons, safe)
    target = fermi_dirac((diagonal - mu) / safe)
    error = jnp.where(temperature > 0, jnp.max(jnp.abs(occupations - target)), 0.0)
    return jnp.max(off), jnp.max(commutator), error


def self_diagonalisation(h: Hamiltonian, coeffs, occupations, positions, temperature) -> dict:
    """``max_offdiagonal``: the largest |H_ij|, i != j, in the orbitals' basis (gauge-dependent
    where occupations are equal: any rotation of equally occupied orbitals leaves E unchanged);
    ``max_commutator``: the largest |[H, F]_ij| = |H_ij (f_j - f_i)|, zero at any stationary
    point; ``max_occupation_error``: the largest |f_i - f_FD(H_ii)| (T > 0 only)."""
    off, commutator, error = _measures(h, coeffs, occupations, positions, jnp.asarray(temperature, dtype=jnp.float64))
    return {
        "max_offdiagonal": float(off),
        "max_commutator": float(commutator),
        "max_occupation_error": float(error),
    }
