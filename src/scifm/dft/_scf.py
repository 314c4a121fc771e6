"""Conventional self-consistent field: diagonalisation and Pulay (DIIS) density mixing.

Each cycle builds ``V_eff`` from the input density, diagonalises the Kohn-Sham matrix at every
k-point (densely, or by a few warm-started LOBPCG sweeps: :mod:`scifm.dft._eigensolver`), occupies the bands (fixed at T = 0, Fermi-Dirac otherwise), and mixes the output
density with the previous ones (Pulay 1980: the combination of the last ``history`` inputs
whose residuals ``rho_out - rho_in`` have the least norm, plus ``mixing`` times that residual).
The energy reported is the functional of the output orbitals, the same functional the direct
minimiser lowers.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm._progress import NoProgress
from scifm.dft._eigensolver import LOBPCG, Dense, lobpcg
from scifm.dft._hamiltonian import Hamiltonian
from scifm.dft._occupations import fixed_occupations, smeared_occupations
from scifm.dft._result import GroundState
from scifm.dft._sharding import per_kpoint, put_along_k


@eqx.filter_jit
def _cycle(h: Hamiltonian, rho, positions, bands: int, temperature: float):
    v = h.effective_potential(rho, positions)
    eigenvalues, vectors = per_kpoint(jnp.linalg.eigh, h.sharding)(h.matrices(v, positions))
    return None, jnp.zeros(()), *_occupy(h, eigenvalues[:, :bands], vectors[:, :, :bands], positions, temperature)


@eqx.filter_jit
def _cycle_iterative(h: Hamiltonian, rho, x, positions, bands: int, temperature: float, sweeps):
    v = h.effective_potential(rho, positions)
    projectors = h.projectors(positions)
    eigenvalues, vectors, residual = lobpcg(
        lambda c: h.apply(c, v, positions, projectors), x, h.kinetic, jnp.asarray(h.basis.mask), sweeps, h.sharding
    )
    occupied = _occupy(h, eigenvalues[:, :bands], vectors[:, :, :bands], positions, temperature)
    return vectors, jnp.max(residual[:, :bands]), *occupied


def _occupy(h, eigenvalues, coeffs, positions, temperature):
    if temperature > 0:
        occupations, mu = smeared_occupations(eigenvalues, h.weights, h.electrons, temperature)
    else:
        occupations, mu = fixed_occupations(eigenvalues, h.electrons)
    terms = h.energy_terms(coeffs, occupations, positions, temperature)
    return coeffs, eigenvalues, occupations, mu, h.density(coeffs, occupations), terms


def scf(
    h: Hamiltonian,
    bands: int,
    *,
    temperature: float = 0.0,
    mixing: float = 0.5,
    history: int = 8,
    tolerance: float = 1e-10,
    max_cycles: int = 100,
    eigensolver: Dense | LOBPCG = Dense(),
    progress=NoProgress(),
) -> GroundState:
    """Self-consistent ground state with ``bands`` bands at smearing ``temperature`` (Ha).

    Converged when the free energy changes by less than ``tolerance`` (Ha) twice in a row,
    the density residual integrates to less than ``sqrt(tolerance)`` electrons and (LOBPCG)
    every band's residual norm ``|H c - e c|`` is below ``sqrt(tolerance)`` Ha.
    """
    positions = jnp.asarray(h.basis.crystal.positions)
    # strongly typed, as _pulay returns it (else the first cycle compiles on its own)
    rho = jnp.full(h.g2.shape, h.electrons / h.volume, dtype=jnp.float64)
    inputs, residuals, energies = [], [], []
    iterative = isinstance(eigensolver, LOBPCG)
    if iterative:
        x = _random_orbitals(h, bands + eigensolver.extra_bands)
    progress.start(max_cycles, 0)
    converged, calm = False, 0
    cycle = 0
    while cycle < max_cycles:
        cycle += 1
        if iterative:
            sweeps = eigensolver.first_sweeps if cycle == 1 else eigensolver.sweeps
            x, band_error, coeffs, eigenvalues, occupations, mu, rho_out, terms = _cycle_iterative(
                h, rho, x, positions, bands, temperature, jnp.asarray(sweeps)
            )
        else:
            _, band_error, coeffs, eigenvalues, occupations, mu, rho_out, terms = _cycle(
                h, rho, positions, bands, temperature
            )
        free = float(terms["free_energy"])
        residual = np.asarray(rho_out) - np.asarray(rho)
        error = float(np.sum(np.abs(residual))) * h.volume / h.points
        progress.step(free, 1)
        calm = calm + 1 if energies and abs(free - energies[-1]) < tolerance else 0
        energies.append(free)
        if calm >= 2 and error < np.sqrt(tolerance) and float(band_error) < np.sqrt(tolerance):
            converged = True
            break
        inputs, residuals = (inputs + [rho])[-history:], (residuals + [residual])[-history:]
        rho = _pulay(inputs, residuals, mixing)
    progress.close()
    return GroundState(
        hamiltonian=h,
        positions=np.asarray(positions),
        coeffs=coeffs,
        occupations=occupations,
        eigenvalues=np.asarray(eigenvalues),
        energies={k: float(v) for k, v in terms.items()},
        fermi_level=float(mu),
        temperature=temperature,
        steps=cycle,
        converged=converged,
        history=energies,
    )


def _random_orbitals(h: Hamiltonian, count: int):
    """Deterministic random start, damped by kinetic energy (smooth orbitals first)."""
    nk, npw = h.basis.mask.shape
    k1, k2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(k1, (nk, npw, count)) + 1j * jax.random.normal(k2, (nk, npw, count))
    return put_along_k(x * h.damping(), h.sharding)


def _pulay(inputs, residuals, mixing):
    """Pulay (DIIS) mixing of the last densities, on the host: a few small arrays whose count
    changes every cycle (eagerly in JAX, each count would compile its own operations)."""
    inputs = [np.asarray(x) for x in inputs]
    residuals = [np.asarray(x) for x in residuals]
    n = len(inputs)
    r = np.stack([x.ravel() for x in residuals])
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = r @ r.T
    a[n, n] = 0.0
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    coefficients = np.linalg.lstsq(a, rhs, rcond=None)[0][:n]
    mixed = sum(c * (x + mixing * res) for c, x, res in zip(coefficients, inputs, residuals, strict=True))
    return jnp.asarray(np.maximum(mixed, 0.0))
