"""The Kohn-Sham energy functional in plane waves, its Hamiltonian, and the density.

Conventions. An orbital at k is ``psi(r) = Omega^(-1/2) sum_G c_G exp(i (k+G).r)`` with
``sum_G |c_G|^2 = 1``; occupations ``f`` lie in [0, 1] per spin (spin-restricted: each
orbital holds ``2 f`` electrons); k-point weights sum to 1. The density on the FFT grid is
``rho(r) = sum_k w_k sum_i 2 f_ki |psi_ki(r)|^2`` and ``rho_G = FFT(rho) / N``.

``E = E_kin + E_nl + E_loc + E_H + E_xc + E_ewald + E_alpha`` with
``E_kin = sum_k w_k sum_i 2 f_ki sum_G |k+G|^2 / 2 |c_G|^2``,
``E_nl = sum_k w_k sum_i 2 f_ki sum_pq conj(beta_p) h_pq beta_q``, ``beta = B^H c``,
``E_loc = Omega sum_{G != 0} conj(rho_G) V_loc(G)``, ``E_H = 2 pi Omega sum_{G != 0} |rho_G|^2 / G^2``,
``E_xc = (Omega / N) sum_r rho eps_xc(rho)``; the free energy subtracts ``T S`` with
``S = -2 sum_k w_k sum_i [f ln f + (1 - f) ln(1 - f)]``. These are ABINIT's terms
("kinetic", "non_local_psp", "local_psp", "hartree", "xc", "Ewald energy", "psp_core").
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm.dft._basis import PlaneWaves
from scifm.dft._ewald import ewald_energy
from scifm.dft._pseudo import GTH, gth_pade, radial_projector, real_harmonics
from scifm.dft._sharding import along_k, kpoint_sharding, put_along_k
from scifm.dft._xc import PW92, AbstractLDA

PADDED_ENERGY = 1e4  # Hartree: the diagonal given to padded plane waves (never occupied)


def fermi_dirac(x):
    return jax.nn.sigmoid(-x)


def entropy_terms(f):
    """``-[f ln f + (1 - f) ln(1 - f)]``, zero at f = 0 and 1."""
    f = jnp.clip(f, 0.0, 1.0)
    safe = lambda t: jnp.where(t > 0, t * jnp.log(jnp.where(t > 0, t, 1.0)), 0.0)  # noqa: E731
    return -(safe(f) + safe(1 - f))


class Hamiltonian(eqx.Module):
    """Everything fixed for one crystal, basis and functional; positions may vary (forces).

    Build with :meth:`build`; its methods are pure JAX functions of orbitals, occupations
    and positions.
    """

    basis: PlaneWaves = eqx.field(static=True)
    pseudos: tuple[GTH, ...] = eqx.field(static=True)
    xc: AbstractLDA
    species: tuple[int, ...] = eqx.field(static=True)  # atom -> index into pseudos
    sharding: object = eqx.field(static=True)  # of per-k arrays over devices, or None
    symmetry: object = eqx.field(static=True)  # a Symmetry whose orbits the k-points stand for, or None
    kinetic: jax.Array  # (nk, npw)
    weights: jax.Array  # (nk,)
    g2: jax.Array  # (N1, N2, N3) |G|^2 on the grid
    gvec: jax.Array  # (N1, N2, N3, 3)
    symmetry_maps: tuple | None  # Symmetry.density_maps on this grid, or None

    @classmethod
    def build(
        cls, basis: PlaneWaves, xc: AbstractLDA = PW92(), pseudos=None, devices=None, symmetry=None
    ) -> Hamiltonian:
        """``pseudos``: symbol -> :class:`GTH` (default the GTH-PADE table); ``devices``: over
        which the k-points are split (default all local devices; see :mod:`._sharding`);
        ``symmetry``: the :class:`~scifm.dft._symmetry.Symmetry` whose irreducible k-points
        ``basis`` holds (the density is then symmetrised), or None for a full mesh."""
        symbols = basis.crystal.symbols
        table = pseudos or {}
        unique = tuple(dict.fromkeys(symbols))
        pseudo_list = tuple(table.get(s) or gth_pade(s) for s in unique)
        species = tuple(unique.index(s) for s in symbols)
        kinetic = np.where(basis.mask, 0.5 * np.sum(basis.kpg**2, axis=-1), PADDED_ENERGY)
        gvec = basis.grid_vectors()
        sharding = kpoint_sharding(len(basis.kpoints), devices)
        return cls(
            basis,
            pseudo_list,
            xc,
            species,
            sharding,
            symmetry,
            put_along_k(jnp.asarray(kinetic), sharding),
            jnp.asarray(basis.kpoints.weights),
            jnp.asarray(np.sum(gvec**2, axis=-1)),
            jnp.asarray(gvec),
            None if symmetry is None else tuple(jnp.asarray(m) for m in symmetry.density_maps(basis)),
        )

    # --- sizes ---

    @property
    def electrons(self) -> int:
        return int(sum(self.pseudos[s].zion for s in self.species))

    @property
    def volume(self) -> float:
        return self.basis.crystal.volume

    @property
    def points(self) -> int:
        return int(np.prod(self.basis.grid))

    def damping(self):
        """(nk, npw, 1) ``1 / (1 + |k+G|^2 / 2)`` on the real plane waves, zero on padded ones:
        the envelope of a smooth random start (low kinetic energy first)."""
        return jnp.where(jnp.asarray(self.basis.mask), 1 / (1 + self.kinetic), 0.0)[..., None]

    # --- pseudopotential pieces ---

    def local_potential_g(self, positions):
        """``V_loc(G)`` on the FFT grid (Hartree), the G = 0 entry zero."""
        cart = positions @ self.basis.crystal.lattice
        total = jnp.zeros(self.g2.shape, dtype=jnp.complex128)
        for s, pseudo in enumerate(self.pseudos):
            atoms = cart[np.flatnonzero(np.array(self.species) == s)]
            structure = jnp.sum(jnp.exp(-1j * jnp.einsum("xyzc,ac->axyz", self.gvec, atoms)), 0)
            total = total + structure * pseudo.local(self.g2)
        return total / self.volume

    def projector_layout(self):
        """For each projector column: (atom, l, m, i, r_l); and the block-diagonal ``h``."""
        columns, blocks = [], []
        for atom, s in enumerate(self.species):
            pseudo = self.pseudos[s]
            for l, (r, h) in enumerate(pseudo.channels):
                h = np.atleast_2d(np.asarray(h, dtype=np.float64)) if len(h) else np.zeros((0, 0))
                for m in range(2 * l + 1):
                    for i in range(h.shape[0]):
                        columns.append((atom, l, m, i + 1, r))
                    blocks.append(h)
        n = len(columns)
        full = np.zeros((n, n))
        at = 0
        for b in blocks:
            full[at : at + len(b), at : at + len(b)] = b
            at += len(b)
        return columns, full

    def projectors(self, positions):
        """``B[k, G, p] = <k+G|p>`` (nk, npw, nproj), zero on padded plane waves, and ``h``."""
        columns, h = self.projector_layout()
        kpg = jnp.asarray(self.basis.kpg)
        q = jnp.sqrt(jnp.sum(kpg**2, axis=-1))
        cart = positions @ self.basis.crystal.lattice
        cols = []
        for atom, l, m, i, r in columns:
            phase = jnp.exp(-1j * kpg @ cart[atom])
            radial = radial_projector(l, i, r, q)
            harmonic = real_harmonics(l, kpg)[..., m]
            cols.append(phase * radial * harmonic)
        if not cols:
            return jnp.zeros(q.shape + (0,), jnp.complex128), jnp.zeros((0, 0))
        b = jnp.stack(cols, axis=-1) / np.sqrt(self.volume)
        return along_k(b * jnp.asarray(self.basis.mask)[..., None], self.sharding), jnp.asarray(h)

    # --- density ---

    def to_grid(self, coeffs):
        """(nk, npw, nb) coefficients -> (nk, nb, N1, N2, N3) ``sum_G c_G exp(iG.r)``."""
        nk, npw, nb = coeffs.shape
        box = jnp.zeros((nk, nb, self.points), dtype=jnp.complex128)
        flat = jnp.asarray(self.basis.flat)
        c = jnp.swapaxes(coeffs, 1, 2) * jnp.asarray(self.basis.mask)[:, None, :]
        box = jax.vmap(lambda bx, idx, ck: bx.at[:, idx].add(ck))(box, flat, c)  # padded: zeros
        box = along_k(box.reshape((nk, nb) + self.basis.grid), self.sharding)
        return jnp.fft.ifftn(box, axes=(-3, -2, -1)) * self.points

    def density(self, coeffs, occupations):
        """Electron density (electrons / bohr^3) on the FFT grid."""
        psi = self.to_grid(coeffs)
        weight = 2 * self.weights[:, None] * occupations  # (nk, nb)
        # a weighted sum, not an einsum: the einsum's gradient reaches the inverse FFT in a
        # layout XLA:CPU's FFT refuses when the k axis is sharded
        rho = jnp.sum(weight[..., None, None, None] * jnp.abs(psi) ** 2, axis=(0, 1)) / self.volume
        if self.symmetry_maps is None:
            return rho
        index, factor = self.symmetry_maps
        rho_g = jnp.sum(jnp.fft.fftn(rho).ravel()[index] * factor, axis=0).reshape(rho.shape)
        return jnp.real(jnp.fft.ifftn(rho_g))

    # --- energy ---

    def hartree_potential_g(self, rho_g):
        safe = jnp.where(self.g2 > 0, self.g2, 1.0)
        return jnp.where(self.g2 > 0, 4 * jnp.pi * rho_g / safe, 0.0)

    def energy_terms(self, coeffs, occupations, positions, temperature=0.0):
        """The energy terms (Hartree) of orbitals ``coeffs`` (nk, npw, nb) with
        ``occupations`` (nk, nb) at reduced ``positions``; ``free_energy`` subtracts T S."""
        mask = jnp.asarray(self.basis.mask)
        coeffs = coeffs * mask[..., None]
        weight = 2 * self.weights[:, None] * occupations
        norms = jnp.abs(coeffs) ** 2
        kinetic = jnp.sum(weight * jnp.einsum("kg,kgb->kb", jnp.where(mask, self.kinetic, 0), norms))
        b, h = self.projectors(positions)
        beta = jnp.einsum("kgp,kgb->kbp", jnp.conj(b), coeffs)
        nonlocal_ = jnp.sum(weight * jnp.real(jnp.einsum("kbp,pq,kbq->kb", jnp.conj(beta), h, beta)))
        rho = self.density(coeffs, occupations)
        rho_g = jnp.fft.fftn(rho) / self.points
        local = self.volume * jnp.real(jnp.sum(jnp.conj(rho_g) * self.local_potential_g(positions)))
        hartree = 0.5 * self.volume * jnp.real(jnp.sum(jnp.conj(rho_g) * self.hartree_potential_g(rho_g)))
        xc = self.volume / self.points * jnp.sum(self.xc.energy_density(rho))
        charges = np.array([self.pseudos[s].zion for s in self.species], dtype=np.float64)
        ewald = ewald_energy(self.basis.crystal.lattice, positions, charges)
        alpha = self.electrons / self.volume * sum(self.pseudos[s].alpha() for s in self.species)
        entropy = jnp.sum(2 * self.weights[:, None] * entropy_terms(occupations))
        total = kinetic + nonlocal_ + local + hartree + xc + ewald + alpha
        return {
            "kinetic": kinetic,
            "non_local_psp": nonlocal_,
            "local_psp": local,
            "hartree": hartree,
            "xc": xc,
            "ewald": ewald,
            "psp_core": jnp.asarray(alpha),
            "total_energy": total,
            "entropy": entropy,
            "free_energy": total - temperature * entropy,
        }

    def free_energy(self, coeffs, occupations, positions, temperature=0.0):
        return self.energy_terms(coeffs, occupations, positions, temperature)["free_energy"]

    # --- Hamiltonian matrices ---

    def effective_potential(self, rho, positions):
        """``V_loc + V_H + V_xc`` on the real-space grid (Hartree)."""
        rho_g = jnp.fft.fftn(rho) / self.points
        v_g = self.local_potential_g(positions) + self.hartree_potential_g(rho_g)
        v = jnp.real(jnp.fft.ifftn(v_g) * self.points)
        return v + self.xc.potential(rho)

    def matrices(self, v_eff, positions):
        """Dense Kohn-Sham matrices (nk, npw, npw) in each k-point's plane waves."""
        v_g = (jnp.fft.fftn(v_eff) / self.points).ravel()
        n1, n2, n3 = self.basis.grid
        miller = jnp.asarray(self.basis.miller)
        diff = jnp.mod(miller[:, :, None, :] - miller[:, None, :, :], jnp.array([n1, n2, n3]))
        index = (diff[..., 0] * n2 + diff[..., 1]) * n3 + diff[..., 2]
        mask = jnp.asarray(self.basis.mask)
        both = mask[:, :, None] & mask[:, None, :]
        local = jnp.where(both, v_g[index], 0.0)
        b, h = self.projectors(positions)
        nonlocal_ = jnp.einsum("kgp,pq,khq->kgh", b, h, jnp.conj(b))
        kinetic = jax.vmap(jnp.diag)(self.kinetic.astype(jnp.complex128))
        return along_k(local + nonlocal_ + kinetic, self.sharding)

    def apply(self, coeffs, v_eff, positions, projectors=None):
        """``H c`` for (nk, npw, nb) coefficients, by FFT (no dense matrix); ``projectors``
        as :meth:`projectors` returns them, to reuse across many products."""
        mask = jnp.asarray(self.basis.mask)
        psi = self.to_grid(coeffs)  # (nk, nb, grid)
        vpsi = jnp.fft.fftn(psi * v_eff, axes=(-3, -2, -1)) / self.points
        flat = jnp.asarray(self.basis.flat)
        vpsi = vpsi.reshape(vpsi.shape[:2] + (-1,))
        local = jax.vmap(lambda v, idx: v[:, idx])(vpsi, flat)  # (nk, nb, npw)
        local = jnp.swapaxes(local, 1, 2)
        b, h = projectors if projectors is not None else self.projectors(positions)
        nonlocal_ = jnp.einsum("kgp,pq,kqb->kgb", b, h, jnp.einsum("kgp,kgb->kpb", jnp.conj(b), coeffs))
        return along_k((self.kinetic[..., None] * coeffs + local + nonlocal_) * mask[..., None], self.sharding)
