"""One entry point: a crystal, a cut-off and a k-mesh in, a converged ground state out."""

from __future__ import annotations

import dataclasses
import math

import jax
import optax

from scifm._checks import UserError, check_non_negative
from scifm._progress import NoProgress
from scifm.dft._basis import PlaneWaves
from scifm.dft._crystal import Crystal, KPoints
from scifm.dft._direct import Annealing, direct_minimise
from scifm.dft._eigensolver import LOBPCG, Dense
from scifm.dft._hamiltonian import Hamiltonian
from scifm.dft._occupations import check_bands
from scifm.dft._result import GroundState
from scifm.dft._scf import scf
from scifm.dft._symmetry import Symmetry
from scifm.dft._xc import PW92, AbstractLDA


@dataclasses.dataclass(frozen=True)
class SCF:
    """Conventional SCF: Pulay mixing, dense or LOBPCG diagonalisation (see
    :func:`scifm.dft.scf`)."""

    mixing: float = 0.5
    history: int = 8
    tolerance: float = 1e-10
    max_cycles: int = 100
    eigensolver: Dense | LOBPCG = Dense()
    symmetry: bool = True  # irreducible k-points of the space group (spglib), else time reversal

    reduces_kpoints = True  # (time reversal at least)

    def solve(self, h, bands, temperature, run=None, progress=NoProgress()) -> GroundState:
        return scf(
            h, bands, temperature=temperature, mixing=self.mixing, history=self.history,
            tolerance=self.tolerance, max_cycles=self.max_cycles, eigensolver=self.eigensolver,
            progress=progress,
        )


@dataclasses.dataclass(frozen=True)
class Direct:
    """Direct minimisation over orbitals and occupations (see :func:`scifm.dft.direct_minimise`).

    ``optimizer`` defaults to ``optax.lbfgs()``; the paper's is ``optax.adam(1e-2, b2=0.99)``.
    """

    seed: int = 0
    optimizer: optax.GradientTransformation | None = None
    annealing: Annealing | None = None
    precondition: bool = False
    max_steps: int = 5000
    tolerance: float = 1e-9
    gradient_tolerance: float = 1e-5
    checkpoint_every: int = 200

    reduces_kpoints = False  # the occupation parameterisation needs equal k-point weights

    def solve(self, h, bands, temperature, run=None, progress=NoProgress()) -> GroundState:
        return direct_minimise(
            h, bands, key=jax.random.key(self.seed), temperature=temperature,
            optimizer=self.optimizer, annealing=self.annealing, precondition=self.precondition,
            max_steps=self.max_steps,
            tolerance=self.tolerance, gradient_tolerance=self.gradient_tolerance, run=run,
            checkpoint_every=self.checkpoint_every, progress=progress,
        )


def default_bands(electrons: int, smearing: float) -> int:
    """ABINIT's habit: the occupied bands at T = 0; with smearing 20% more plus four."""
    occupied = math.ceil(electrons / 2)
    return occupied if smearing == 0 else int(math.ceil(1.2 * occupied)) + 4


def check_x64() -> None:
    if not jax.config.jax_enable_x64:
        raise UserError(
            "scifm.dft needs 64-bit floats: call jax.config.update('jax_enable_x64', True) "
            "before any JAX computation"
        )


def ground_state(
    crystal: Crystal,
    *,
    ecut: float,
    kpts: tuple[int, int, int],
    bands: int | None = None,
    smearing: float = 0.0,
    xc: AbstractLDA = PW92(),
    method: SCF | Direct = SCF(),
    run=None,
    devices=None,
    progress=NoProgress(),
) -> GroundState:
    """The Kohn-Sham ground state of ``crystal``.

    Args:
        ecut: plane-wave cut-off (Hartree): ``|k+G|^2 / 2 <= ecut`` at each k-point.
        kpts: Gamma-centred Monkhorst-Pack mesh.
        bands: bands per k-point (default :func:`default_bands`).
        smearing: Fermi-Dirac kT (Hartree); 0 for an insulator with fixed occupations.
        xc: the functional (:class:`PW92` or :class:`PZ81`).
        method: :class:`SCF` or :class:`Direct`.
        run: a run directory (resumable direct minimisation).
        devices: the devices the k-points are split over (default: all local devices; the
            largest number of them that divides the k-point count is used).
    Raises:
        UserError: no pseudopotential for an element, a cut-off too small, too few bands,
            an impossible k-mesh, 32-bit floats.
    """
    check_x64()
    check_non_negative("the smearing", smearing)
    symmetry = None
    if isinstance(method, SCF) and method.symmetry:
        symmetry = Symmetry.of(crystal).for_mesh(kpts)
        kpoints = symmetry.irreducible(kpts)
    else:
        kpoints = KPoints.monkhorst_pack(kpts, time_reversal=method.reduces_kpoints)
    basis = PlaneWaves.build(crystal, kpoints, ecut)
    h = Hamiltonian.build(basis, xc, devices=devices, symmetry=symmetry)
    bands = bands or default_bands(h.electrons, smearing)
    check_bands(bands, h.electrons, smearing)
    if bands > int(basis.count.min()):
        raise UserError(
            f"{bands} bands need at least as many plane waves; the cut-off {ecut} Ha gives "
            f"{basis.count.min()} at some k-point"
        )
    if smearing == 0 and bands > math.ceil(h.electrons / 2) and isinstance(method, Direct):
        raise UserError("empty bands need smearing in direct minimisation; give --smearing")
    return method.solve(h, bands, smearing, run=run, progress=progress)
