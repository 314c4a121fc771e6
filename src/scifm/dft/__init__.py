"""Differentiable plane-wave DFT: direct minimisation with occupations, and SCF.

Hartree atomic units inside. ``ground_state(Crystal.builtin("si"), ecut=10, kpts=(2, 2, 2))``
returns a :class:`GroundState` (energies, eigenvalues, occupations, forces); ``band_structure``
and ``density_of_states`` work from it. Needs 64-bit floats (``jax_enable_x64``).
"""

from scifm.dft._bands import FCC_PATH as FCC_PATH
from scifm.dft._bands import FCC_POINTS as FCC_POINTS
from scifm.dft._bands import Bands as Bands
from scifm.dft._bands import band_structure as band_structure
from scifm.dft._bands import density_of_states as density_of_states
from scifm.dft._bands import non_self_consistent as non_self_consistent
from scifm.dft._basis import PlaneWaves as PlaneWaves
from scifm.dft._basis import fft_grid as fft_grid
from scifm.dft._crystal import BOHR_PER_ANGSTROM as BOHR_PER_ANGSTROM
from scifm.dft._crystal import BUILTIN as BUILTIN
from scifm.dft._crystal import HARTREE_EV as HARTREE_EV
from scifm.dft._crystal import Crystal as Crystal
from scifm.dft._crystal import KPoints as KPoints
from scifm.dft._direct import Annealing as Annealing
from scifm.dft._direct import direct_minimise as direct_minimise
from scifm.dft._eigensolver import LOBPCG as LOBPCG
from scifm.dft._eigensolver import Dense as Dense
from scifm.dft._ewald import ewald_energy as ewald_energy
from scifm.dft._ground import SCF as SCF
from scifm.dft._ground import Direct as Direct
from scifm.dft._ground import default_bands as default_bands
from scifm.dft._ground import ground_state as ground_state
from scifm.dft._hamiltonian import Hamiltonian as Hamiltonian
from scifm.dft._pseudo import GTH as GTH
from scifm.dft._pseudo import GTH_PADE as GTH_PADE
from scifm.dft._pseudo import gth_pade as gth_pade
from scifm.dft._result import GroundState as GroundState
from scifm.dft._scf import scf as scf
from scifm.dft._symmetry import Symmetry as Symmetry
from scifm.dft._xc import FUNCTIONALS as FUNCTIONALS
from scifm.dft._xc import PW92 as PW92
from scifm.dft._xc import PZ81 as PZ81
from scifm.dft._xc import AbstractLDA as AbstractLDA
from scifm.dft._xc import functional as functional

__all__ = [
    "Annealing", "BOHR_PER_ANGSTROM", "BUILTIN", "Bands", "FCC_PATH", "FCC_POINTS", "Crystal", "Dense", "Direct", "FUNCTIONALS",
    "GTH", "GTH_PADE", "GroundState", "HARTREE_EV", "Hamiltonian", "KPoints", "LOBPCG", "PW92", "PZ81",
    "PlaneWaves", "SCF", "Symmetry", "AbstractLDA", "band_structure", "default_bands", "density_of_states",
    "direct_minimise", "ewald_energy", "fft_grid", "functional", "ground_state", "gth_pade",
    "non_self_consistent", "scf",
]  # fmt: skip
