"""scifm.dft against exact answers and an independent code (ABINIT 9.6, same pseudopotentials).

ABINIT reference energies: REFERENCES.md ("Direct-minimisation DFT") and reruns here with the
inputs written by benchmarks/dft_abinit.py (ABINIT's ngfft agrees with fft_grid in each).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, special

from scifm import dft
from scifm._checks import UserError
from scifm.dft._pseudo import radial_projector

SI_ABINIT = -7.83258151162750  # Si, a = 10.26 bohr, ecut 10, 2x2x2 Gamma-centred, 4 bands, PW92
AL_ABINIT = -2.09133173858761  # fcc Al, a = 7.65 bohr, ecut 10, 4x4x4, FD kT = 0.01, 6 bands


def si(a=10.26):
    return dft.Crystal.diamond("Si", a)


# --- Ewald ---


@pytest.mark.parametrize(
    "lattice, positions, alpha",
    [
        (np.eye(3), [[0, 0, 0]], 1.7601188842),
        (0.5 * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), [[0, 0, 0]], 1.7918585114),
        (0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), [[0, 0, 0]], 1.7917472304),
        (
            0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]),
            [[0, 0, 0], [0.25, 0.25, 0.25]],
            1.6708514055,
        ),
    ],
    ids=["sc", "bcc", "fcc", "diamond"],
)
def test_ewald_matches_madelung_constants(lattice, positions, alpha):
    lattice = 3.7 * lattice
    n = len(positions)
    r_ws = (3 * abs(np.linalg.det(lattice)) / n / (4 * math.pi)) ** (1 / 3)
    energy = float(dft.ewald_energy(lattice, jnp.asarray(positions, float), np.full(n, 2.0)))
    assert energy / n == pytest.approx(-alpha * 4 / (2 * r_ws), rel=1e-9)


def test_ewald_of_silicon_matches_abinit():
    c = si()
    assert float(dft.ewald_energy(c.lattice, c.positions, [4.0, 4.0])) == pytest.approx(
        -8.40046478618609, abs=1e-11
    )


# --- exchange-correlation ---


@pytest.mark.parametrize("rs, eps", [(1, -0.5179391575), (2, -0.2738422367), (5, -0.1198493197)])
def test_pw92_uniform_gas(rs, eps):
    rho = 3 / (4 * math.pi * rs**3)
    assert float(dft.PW92().eps_xc(jnp.asarray(rho))) == pytest.approx(eps, abs=2e-10)


def test_pz81_branches_and_exchange():
    xc = dft.PZ81()
    for rs, expected_c in [
        (2.0, -0.1423 / (1 + 1.0529 * math.sqrt(2) + 0.3334 * 2)),
        (0.5, 0.0311 * math.log(0.5) - 0.048 + 0.0020 * 0.5 * math.log(0.5) - 0.0116 * 0.5),
    ]:
        rho = 3 / (4 * math.pi * rs**3)
        exchange = -0.4581652933 / rs
        assert float(xc.eps_xc(jnp.asarray(rho))) == pytest.approx(exchange + expected_c, abs=1e-9)
    # PZ81 is continuous at rs = 1 to the fit's digits, and differs from PW92 by ~1e-3 Ha
    below, above = (float(xc.correlation(jnp.asarray(r))) for r in (1 - 1e-9, 1 + 1e-9))
    assert abs(below - above) < 5e-5
    assert 1e-4 < abs(float(dft.PW92().correlation(jnp.asarray(2.0))) - float(xc.correlation(jnp.asarray(2.0)))) < 5e-3  # fmt: skip


def test_xc_potential_is_the_derivative():
    rho = jnp.array([1e-3, 0.02, 0.3])
    for xc in (dft.PW92(), dft.PZ81()):
        h = 1e-7
        numeric = (xc.energy_density(rho + h) - xc.energy_density(rho - h)) / (2 * h)
        np.testing.assert_allclose(xc.potential(rho), numeric, rtol=1e-6)


# --- pseudopotentials ---


@pytest.mark.parametrize("l, i", [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2)])
def test_projector_transforms_match_numerical_hankel(l, i):
    r_l = 0.45
    p = lambda r: (  # noqa: E731
        math.sqrt(2) * r ** (l + 2 * (i - 1)) * math.exp(-(r**2) / (2 * r_l**2))
        / (r_l ** (l + (4 * i - 1) / 2) * math.sqrt(math.gamma(l + (4 * i - 1) / 2)))
    )
    for q in (0.3, 1.7, 4.0):
        numeric = 4 * math.pi * integrate.quad(
            lambda r, q=q: r**2 * special.spherical_jn(l, q * r) * p(r), 0, 12 * r_l, limit=200
        )[0]
        assert float(radial_projector(l, i, r_l, jnp.asarray(q))) == pytest.approx(numeric, rel=1e-8, abs=1e-12)  # fmt: skip


def test_psp_core_energy_matches_abinit():
    pseudo = dft.gth_pade("Si")
    assert 8 / si().volume * 2 * pseudo.alpha() == pytest.approx(-0.294892765803411, abs=1e-12)


def test_fft_grid_is_abinits():
    assert dft.fft_grid(si().lattice, 10.0) == (24, 24, 24)
    assert dft.fft_grid(dft.Crystal.fcc("Al", 7.65).lattice, 10.0) == (16, 16, 16)


# --- against ABINIT ---


@pytest.fixture
def silicon():
    return _silicon()


@functools.cache  # not a module fixture: xdist tears those down whenever its queue runs dry
def _silicon():
    return dft.ground_state(si(), ecut=10, kpts=(2, 2, 2), bands=4)


@pytest.mark.xdist_group("silicon")  # one worker computes the fixture once
def test_silicon_matches_abinit(silicon):
    assert silicon.converged
    assert silicon.energies["total_energy"] == pytest.approx(SI_ABINIT, abs=1e-8)
    # ABINIT's printed Gamma eigenvalues (Hartree, 5 decimals) and its terms
    gamma = int(np.flatnonzero(np.all(silicon.hamiltonian.basis.kpoints.reduced == 0, axis=1))[0])
    np.testing.assert_allclose(silicon.eigenvalues[gamma], [-0.17248, 0.27046, 0.27046, 0.27046], atol=6e-6)  # fmt: skip
    assert silicon.energies["xc"] == pytest.approx(-2.43055845539794, abs=1e-8)
    assert silicon.energies["hartree"] == pytest.approx(0.626195089861523, abs=1e-8)


def test_aluminium_with_smearing_matches_abinit():
    al = dft.Crystal.fcc("Al", 7.65)
    gs = dft.ground_state(al, ecut=10, kpts=(4, 4, 4), bands=6, smearing=0.01)
    assert gs.converged
    assert gs.energies["free_energy"] == pytest.approx(AL_ABINIT, abs=1e-8)
    assert gs.energies["total_energy"] - gs.energies["free_energy"] == pytest.approx(5.79435997779947e-03, abs=1e-8)  # fmt: skip


def test_energy_falls_with_the_cutoff():
    energies = [dft.ground_state(si(), ecut=e, kpts=(1, 1, 1)).energies["total_energy"] for e in (4, 6, 8)]
    assert energies[0] > energies[1] > energies[2]
    assert energies[1] - energies[2] < energies[0] - energies[1]


# --- direct minimisation ---


@pytest.fixture
def silicon_both():
    return _silicon_both()


@functools.cache
def _silicon_both():
    """Si at ecut 5, 2x2x2, by SCF and by direct minimisation."""
    kw = dict(ecut=5, kpts=(2, 2, 2), bands=4)
    return dft.ground_state(si(), **kw), dft.ground_state(si(), **kw, method=dft.Direct())


@pytest.mark.xdist_group("silicon_both")
def test_direct_minimisation_agrees_with_scf_for_an_insulator(silicon_both):
    scf, direct = silicon_both
    assert direct.converged
    assert direct.energies["total_energy"] == pytest.approx(scf.energies["total_energy"], abs=1e-8)
    assert direct.self_diagonalisation()["max_commutator"] < 1e-4


def test_direct_minimisation_agrees_with_scf_for_a_metal_and_occupations_turn_fermi_dirac():
    al = dft.Crystal.fcc("Al", 7.65)
    kw = dict(ecut=3, kpts=(2, 2, 2), bands=6, smearing=0.02)
    scf = dft.ground_state(al, **kw)
    direct = dft.ground_state(al, **kw, method=dft.Direct(max_steps=800))  # within 1e-6 Ha by then (3e-7)
    assert direct.energies["free_energy"] == pytest.approx(scf.energies["free_energy"], abs=1e-6)
    measures = direct.self_diagonalisation()
    assert measures["max_occupation_error"] < 1e-3
    assert measures["max_commutator"] < 1e-4
    # the self-diagonalisation measures fall along the run
    rows = direct.diagonalisation
    assert rows[-1]["max_occupation_error"] < rows[0]["max_occupation_error"] / 10


def test_adam_lowers_the_free_energy_from_a_random_start():
    h = dft.Hamiltonian.build(dft.PlaneWaves.build(si(), dft.KPoints.monkhorst_pack((1, 1, 1)), 3.0))
    gs = dft.direct_minimise(h, 4, key=jax.random.key(1), optimizer=optax.adam(1e-2, b2=0.99), max_steps=50)  # fmt: skip
    assert gs.history[-1] < gs.history[0] - 0.1


def test_direct_minimisation_resumes_to_the_same_parameters(tmp_path):
    from scifm._runs import RunDirectory

    h = dft.Hamiltonian.build(dft.PlaneWaves.build(si(), dft.KPoints.monkhorst_pack((1, 1, 1)), 3.0))
    kw = dict(key=jax.random.key(0), checkpoint_every=10, tolerance=0.0)
    straight = dft.direct_minimise(h, 4, max_steps=30, **kw)
    run = RunDirectory.open(tmp_path / "run", {"case": "si"})
    dft.direct_minimise(h, 4, max_steps=20, run=run, **kw)  # "killed" after its save at 20
    resumed = dft.direct_minimise(h, 4, max_steps=30, run=RunDirectory.open(tmp_path / "run", {"case": "si"}), **kw)  # fmt: skip
    assert resumed.steps == 30
    np.testing.assert_array_equal(np.asarray(resumed.coeffs), np.asarray(straight.coeffs))
    assert [r["step"] for r in run.metrics()] == [10, 20, 30]


# --- eigensolvers, cells, devices ---


@pytest.mark.xdist_group("silicon")  # one worker computes the fixture once
def test_lobpcg_finds_the_lowest_eigenpairs_of_the_dense_matrix(silicon):
    from scifm.dft._eigensolver import lobpcg
    from scifm.dft._scf import _random_orbitals

    h, positions = silicon.hamiltonian, jnp.asarray(silicon.positions)
    v = h.effective_potential(silicon.density, positions)
    exact = np.linalg.eigvalsh(np.asarray(h.matrices(v, positions)))[:, :6]
    apply = jax.jit(lambda c: h.apply(c, v, positions))
    values, vectors, residual = lobpcg(apply, _random_orbitals(h, 8), h.kinetic, jnp.asarray(h.basis.mask), 40)  # fmt: skip
    np.testing.assert_allclose(values[:, :6], exact, atol=1e-9)
    assert float(residual[:, :6].max()) < 1e-5
    overlap = jnp.einsum("kgi,kgj->kij", jnp.conj(vectors), vectors)
    np.testing.assert_allclose(overlap, np.broadcast_to(np.eye(8), overlap.shape), atol=1e-10)


def test_lobpcg_scf_agrees_with_dense_scf_for_a_metal():
    al = dft.Crystal.fcc("Al", 7.65)
    kw = dict(ecut=4, kpts=(2, 2, 2), bands=6, smearing=0.02)
    dense = dft.ground_state(al, **kw)
    iterative = dft.ground_state(al, **kw, method=dft.SCF(eigensolver=dft.LOBPCG()))
    assert iterative.converged
    assert iterative.energies["free_energy"] == pytest.approx(dense.energies["free_energy"], abs=1e-9)
    np.testing.assert_allclose(iterative.eigenvalues, dense.eigenvalues, atol=1e-6)


def test_cubic_cell_is_four_primitive_cells():
    """The 8-atom cubic cell at Gamma holds the primitive cell's Gamma and three X points."""
    x_points = dft.KPoints.path(np.array([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0], [0, 0.5, 0.5]]))
    primitive = dft.scf(dft.Hamiltonian.build(dft.PlaneWaves.build(si(), x_points, 4.0)), 4)
    cubic = dft.ground_state(dft.Crystal.diamond("Si", 10.26, cubic=True), ecut=4, kpts=(1, 1, 1), method=dft.SCF(eigensolver=dft.LOBPCG()))  # fmt: skip
    assert cubic.hamiltonian.basis.count[0] == primitive.hamiltonian.basis.count.sum()  # the same plane waves
    assert cubic.energies["total_energy"] / 4 == pytest.approx(primitive.energies["total_energy"], abs=1e-5)


def test_irreducible_kpoints_of_the_space_group():
    """Diamond Si: 48 operations; the 4x4x4 Gamma-centred mesh has 8 irreducible points with
    ABINIT's weights (its kptopt 1 output for this mesh); a 2x2x1 mesh keeps fewer operations."""
    symmetry = dft.Symmetry.of(si())
    assert len(symmetry) == 48
    kpoints = symmetry.for_mesh((4, 4, 4)).irreducible((4, 4, 4))
    assert sorted(np.round(kpoints.weights * 64).astype(int)) == [1, 3, 4, 6, 6, 8, 12, 24]
    assert len(symmetry.for_mesh((2, 2, 1))) < 48
    moved = si().positions.copy()
    moved[1] += [0.01, 0, 0]
    assert len(dft.Symmetry.of(si().with_positions(moved))) < 48


def test_a_mesh_that_breaks_symmetry_gives_the_full_mesh_energy():
    kw = dict(ecut=4, kpts=(2, 2, 1), bands=6, smearing=0.02)
    al = dft.Crystal.fcc("Al", 7.65)
    reduced = dft.ground_state(al, **kw)
    full = dft.ground_state(al, **kw, method=dft.SCF(symmetry=False))
    assert len(reduced.hamiltonian.basis.kpoints) < len(full.hamiltonian.basis.kpoints)
    assert reduced.energies["free_energy"] == pytest.approx(full.energies["free_energy"], abs=1e-10)


@pytest.mark.xdist_group("silicon_both")
def test_kpoints_split_over_two_devices_give_the_same_energies(silicon_both):
    """Two CPU devices stand in for two GPUs, the k-points split over them: an SCF on the
    whole mesh (8 k-points; the one here ran on its 3 irreducible ones) and the direct
    minimiser's free energy and gradient (the step's collectives, QR and FFTs)."""
    import os
    import subprocess
    import sys

    from scifm.dft._direct import _objective, initial_parameters

    code = (
        "import jax, equinox as eqx, optax; jax.config.update('jax_enable_x64', True)\n"
        "from scifm import dft\n"
        "from scifm.dft._direct import _objective, initial_parameters\n"
        "si = dft.Crystal.diamond('Si', 10.26)\n"
        "h = dft.Hamiltonian.build(dft.PlaneWaves.build(si, dft.KPoints.monkhorst_pack((2, 2, 2)), 5.0))\n"
        "gs = dft.scf(h, 4)\n"
        "p = initial_parameters(h, 4, key=jax.random.key(0))\n"
        "v, g = eqx.filter_jit(jax.value_and_grad(_objective))(p, h, si.positions, 0.0, False)\n"
        "print(len(jax.devices()), len(gs.coeffs.sharding.device_set), len(p['re'].sharding.device_set), repr(gs.energies['total_energy']), repr(float(v)), repr(float(optax.tree.norm(g))))\n"
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    devices, scf_used, direct_used, scf_energy, value, norm = out.stdout.split()
    assert devices == scf_used == direct_used == "2"
    scf, _ = silicon_both
    assert float(scf_energy) == pytest.approx(scf.energies["total_energy"], abs=1e-10)
    h = dft.Hamiltonian.build(dft.PlaneWaves.build(si(), dft.KPoints.monkhorst_pack((2, 2, 2)), 5.0))
    params = initial_parameters(h, 4, key=jax.random.key(0))
    v, g = eqx.filter_jit(jax.value_and_grad(_objective))(params, h, si().positions, 0.0, False)
    assert float(value) == pytest.approx(float(v), abs=1e-11)
    assert float(norm) == pytest.approx(float(optax.tree.norm(g)), rel=1e-10)


# --- forces ---


@pytest.mark.xdist_group("silicon")  # one worker computes the fixture once
def test_forces_match_finite_differences_and_vanish_by_symmetry(silicon):
    assert np.abs(silicon.forces()).max() < 1e-8
    crystal = si()
    moved = crystal.positions.copy()
    moved[1] += np.array([0.01, -0.004, 0.006])
    kw = dict(ecut=6, kpts=(1, 1, 1), bands=4, method=dft.SCF(symmetry=False))
    gs = dft.ground_state(crystal.with_positions(moved), **kw)
    force = gs.forces()
    np.testing.assert_allclose(force.sum(axis=0), 0, atol=5e-5)  # no net force (up to the grid's egg-box)
    step = 1e-3  # bohr, along x of atom 1
    shift = np.array([step, 0, 0]) @ np.linalg.inv(crystal.lattice)
    e = [dft.ground_state(crystal.with_positions(moved + s * np.array([[0, 0, 0], shift])), **kw).energies["total_energy"] for s in (1, -1)]  # fmt: skip
    assert force[1, 0] == pytest.approx(-(e[0] - e[1]) / (2 * step), abs=1e-5)
    assert abs(force[1, 0]) > 1e-3  # a real force, not a vanishing one
    # the two operations left: density and forces symmetrised, the same answer
    symmetric = dft.ground_state(crystal.with_positions(moved), ecut=6, kpts=(1, 1, 1), bands=4)
    assert len(symmetric.hamiltonian.symmetry) == 2
    np.testing.assert_allclose(symmetric.forces(), force, atol=1e-5)


# --- bands ---


@pytest.mark.xdist_group("silicon")  # one worker computes the fixture once
def test_band_structure_at_the_ground_state_k_points(silicon):
    bands = dft.band_structure(silicon, "GX", bands=4, points_per_segment=2)
    gamma = int(np.flatnonzero(np.all(silicon.hamiltonian.basis.kpoints.reduced == 0, axis=1))[0])
    np.testing.assert_allclose(bands.eigenvalues[0], silicon.eigenvalues[gamma], atol=1e-7)
    assert bands.at("G")[1:4] == pytest.approx([0, 0, 0], abs=1e-6)  # valence top at Gamma


@pytest.mark.xdist_group("silicon")  # one worker computes the fixture once
def test_density_of_states_counts_the_valence_electrons(silicon):
    energies, dos = dft.density_of_states(silicon, mesh=(2, 2, 2), bands=4, width=0.2)
    assert np.trapezoid(dos, energies) == pytest.approx(8, abs=0.05)


# --- refusals ---


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(crystal=dft.Crystal.diamond("Xx", 10.0)), "no pseudopotential for element 'Xx'"),
        (dict(ecut=1e-4, kpts=(2, 2, 2)), "too small: some k-point has no plane wave"),
        (dict(ecut=0.05), "4 bands need at least as many plane waves"),
        (dict(bands=3), "3 bands cannot hold 8 electrons"),
        (dict(kpts=(0, 2, 2)), "three positive integers"),
        (dict(smearing=-1.0), "the smearing"),
        (dict(bands=4, smearing=0.01), "smearing needs empty bands"),
    ],
)
def test_bad_input_is_refused_in_one_line(kwargs, message):
    args = dict(crystal=si(), ecut=4, kpts=(1, 1, 1))
    args.update(kwargs)
    crystal = args.pop("crystal")
    with pytest.raises(UserError, match=message) as info:
        dft.ground_state(crystal, **args)
    assert "\n" not in str(info.value)


def test_odd_electrons_without_smearing_and_32_bit_floats_are_refused():
    with pytest.raises(UserError, match="cannot fill whole bands"):
        dft.ground_state(dft.Crystal.fcc("Al", 7.65), ecut=4, kpts=(1, 1, 1))
    with jax.enable_x64(False):
        with pytest.raises(UserError, match="64-bit"):
            dft.ground_state(si(), ecut=4, kpts=(1, 1, 1))
    with pytest.raises(UserError, match="unknown structure 'nacl'"):
        dft.Crystal.builtin("nacl")


# --- command line ---


def test_cli_ground_state_then_bands(tmp_path, capsys):
    import json

    from scifm.cli import main

    out = tmp_path / "si"
    args = ["dft", "ground-state", "--structure", "si", "--a", "5.4293", "--ecut", "3", "--kpts", "1,1,1", "--method", "scf", "--eigensolver", "dense", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "result.json").read_text())
    direct = dft.ground_state(dft.Crystal.builtin("si", 5.4293), ecut=3, kpts=(1, 1, 1))
    assert result["total_energy"] == pytest.approx(direct.energies["total_energy"], abs=1e-8)
    assert {"free_energy", "fermi_level", "eigenvalues", "occupations", "max_commutator"} <= set(result)
    assert main(args) == 2  # a finished run is not redone
    assert "finished run" in capsys.readouterr().err
    assert main(["dft", "bands", str(out), "--path", "LGX", "--dos-kpts", "2,2,2"]) == 0
    assert (out / "bands.png").stat().st_size > 0 and (out / "dos.png").stat().st_size > 0
    assert json.loads((out / "bands.json").read_text())["labels"][1] == [20, "G"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--structure", "nacl"], "unknown structure 'nacl'"),
        (["--structure", "si", "--kpts", "2,2"], "three positive integers"),
        (["--structure", "si", "--xc", "pbe"], "unknown functional 'pbe'"),
        (["--structure", "si", "--method", "cg"], "unknown --method 'cg'"),
        (["--structure", "si", "--method", "scf", "--eigensolver", "cg"], "unknown --eigensolver 'cg'"),
        (["--structure", "si", "--bands", "2"], "2 bands cannot hold 8 electrons"),
        (["--structure", "si", "--max-steps", "3"], "not converged after 3 steps"),
    ],
)
def test_cli_refusals_are_one_line(tmp_path, capsys, extra, message):
    from scifm.cli import main

    out = tmp_path / "run"
    assert main(["dft", "ground-state", "--ecut", "2", "--kpts", "1,1,1", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (out / "result.json").exists()
