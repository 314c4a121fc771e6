"""`scifm dft ...`: plane-wave DFT ground states (direct minimisation or SCF) and bands.

`ground-state` writes a run directory: ``config.json`` (the structure itself, not only its
name, so that the run is rebuilt without the input file), ``metrics.jsonl`` (the direct
minimiser's free energy and self-diagonalisation measures), ``checkpoint.eqx`` (orbitals and
occupations), ``result.json`` (written last) and, for the direct method, ``selfdiag.png``.
A killed direct minimisation resumes from its last saved parameters; an SCF (seconds to
minutes) starts again. `bands RUN` adds ``bands.png``, ``dos.png`` and ``bands.json``.
"""

from __future__ import annotations

import time

import typer

from scifm._checks import UserError
from scifm.cli._parse import non_negative, positive

app = typer.Typer(help="Plane-wave DFT: ground states and band structures.", no_args_is_help=True)

METHODS = ("direct", "scf")
EIGENSOLVERS = ("lobpcg", "dense")
OPTIMIZERS = ("lbfgs", "adam")


def _kpts(text: str) -> tuple[int, int, int]:
    try:
        mesh = tuple(int(v) for v in text.split(","))
    except ValueError:
        mesh = ()
    if len(mesh) != 3 or min(mesh) < 1:
        raise UserError(f"--kpts takes three positive integers N,N,N, got {text!r}")
    return mesh


def _structure(name: str, a: float | None):
    import os

    from scifm import dft

    if name.lower() in dft.BUILTIN:
        return dft.Crystal.builtin(name, a)
    if not os.path.exists(name):
        raise UserError(
            f"unknown structure {name!r}: not a built-in ({', '.join(dft.BUILTIN)}) nor a file"
        )
    if a is not None:
        raise UserError("--a applies to built-in structures only; a file carries its own cell")
    return dft.Crystal.read(name)


@app.command("ground-state")
def ground_state(
    structure: str = typer.Option(..., "--structure", help="si, c, al, or a structure file ASE reads (CIF, POSCAR, ...)."),
    a: float = typer.Option(None, "--a", parser=positive, help="Cubic lattice constant of a built-in structure (Angstrom) [default: experimental]."),
    ecut: float = typer.Option(..., "--ecut", parser=positive, help="Plane-wave cut-off (Hartree): |k+G|^2/2 <= ecut per k-point."),
    kpts: str = typer.Option("2,2,2", "--kpts", help="Gamma-centred Monkhorst-Pack mesh N1,N2,N3."),
    bands: int = typer.Option(None, "--bands", min=1, help="Bands per k-point [default: occupied ones; with smearing 20% more + 4]."),
    smearing: float = typer.Option(0.0, "--smearing", parser=non_negative, help="Fermi-Dirac kT (Hartree); 0 for an insulator."),
    xc: str = typer.Option("lda-pw92", "--xc", help="lda-pw92 or lda-pz81."),
    method: str = typer.Option("direct", "--method", help="direct (the paper's minimiser) or scf."),
    optimizer: str = typer.Option("lbfgs", "--optimizer", help="Direct method: lbfgs or adam (the paper's, lr 1e-2)."),
    precondition: bool = typer.Option(False, "--precondition", help="Direct method: optimise kinetically scaled orbital parameters (2-6x fewer L-BFGS steps measured; see BENCHMARKS.md)."),
    eigensolver: str = typer.Option("lobpcg", "--eigensolver", help="SCF: lobpcg (iterative, FFT products) or dense (eigh of the full matrix)."),
    max_steps: int = typer.Option(5000, "--max-steps", min=1, help="Direct: optimiser steps; SCF: cycles (x50)."),
    seed: int = typer.Option(0, "--seed", help="Direct method: random initial orbitals and occupations."),
    out: str = typer.Option(..., "--out", help="Run directory; a killed direct run resumes there."),
):
    """Ground state of a crystal by direct minimisation of the free energy over orthonormal
    orbitals and occupations (Li, Lin et al. 2024), or by conventional SCF; GTH-PADE
    pseudopotentials, LDA. Writes RUN/result.json (total_energy, free_energy, fermi_level in
    Hartree, eigenvalues and occupations per k-point, self-diagonalisation measures).

    Example: scifm dft ground-state --structure si --a 5.43 --ecut 10 --kpts 2,2,2 --out runs/si
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    from scifm import dft
    from scifm._progress import Display, RunBar
    from scifm._runs import RunDirectory

    if method not in METHODS:
        raise UserError(f"unknown --method {method!r}; choose from {', '.join(METHODS)}")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown --optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if eigensolver not in EIGENSOLVERS:
        raise UserError(f"unknown --eigensolver {eigensolver!r}; choose from {', '.join(EIGENSOLVERS)}")
    functional = dft.functional(xc)
    crystal = _structure(structure, a)
    mesh = _kpts(kpts)
    config = {
        "kind": "dft-ground-state",
        "structure": structure,
        "lattice_bohr": crystal.lattice.tolist(),
        "symbols": list(crystal.symbols),
        "positions": crystal.positions.tolist(),
        "ecut": ecut,
        "kpts": list(mesh),
        "bands": bands,
        "smearing": smearing,
        "xc": xc,
        "method": method,
        "optimizer": optimizer if method == "direct" else None,
        "eigensolver": eigensolver if method == "scf" else None,
        "seed": seed if method == "direct" else None,
        "precondition": precondition if method == "direct" else None,
    }
    run = RunDirectory.open(out, config)
    if method == "direct":
        opt = optax.lbfgs() if optimizer == "lbfgs" else optax.adam(1e-2, b2=0.99)
        solver = dft.Direct(seed=seed, optimizer=opt, precondition=precondition, max_steps=max_steps)
    else:
        solver = dft.SCF(
            max_cycles=max_steps if max_steps < 5000 else 100,
            eigensolver=dft.LOBPCG() if eigensolver == "lobpcg" else dft.Dense(),
        )
    bar = RunBar(Display(), f"{structure} {method}", unit="it", owns_display=True, quantity="F (Ha)", digits=10)
    start = time.perf_counter()
    gs = dft.ground_state(
        crystal, ecut=ecut, kpts=mesh, bands=bands, smearing=smearing, xc=functional,
        method=solver, run=run, progress=bar,
    )
    seconds = time.perf_counter() - start
    if not gs.converged:
        if method == "direct":
            raise UserError(
                f"not converged after {gs.steps} steps (free energy {gs.energies['free_energy']:.10f} Ha); "
                f"the parameters are kept in {out}: rerun with a larger --max-steps to continue"
            )
        raise UserError(f"SCF not converged after {gs.steps} cycles; try --method direct")
    _save(run, gs, method, seconds)
    e = gs.energies
    print(f"{structure}: total energy {e['total_energy']:.10f} Ha, free energy {e['free_energy']:.10f} Ha, "
          f"Fermi level {gs.fermi_level:.6f} Ha ({gs.steps} {'steps' if method == 'direct' else 'cycles'}, {seconds:.1f} s)")
    print(f"run directory: {out} (config.json, result.json, checkpoint.eqx"
          f"{', metrics.jsonl, selfdiag.png' if method == 'direct' else ''}); bands: scifm dft bands {out}")


def _save(run, gs, method: str, seconds: float) -> None:
    import numpy as np

    from scifm._io import save_figure
    from scifm.dft._plots import plot_self_diagonalisation

    run.save_model(
        {"coeffs": gs.coeffs, "occupations": gs.occupations},
        {"coeffs_shape": list(gs.coeffs.shape), "occupations_shape": list(gs.occupations.shape)},
    )
    if gs.diagonalisation:
        save_figure(plot_self_diagonalisation(gs.diagonalisation, "self-diagonalisation"), run.path / "selfdiag.png")
    summary = gs.summary()
    summary.update({"method": method, "seconds": seconds, "forces_hartree_per_bohr": np.asarray(gs.forces()).tolist()})
    run.write_result(summary)


def load(path: str):
    """The ground state saved in run directory ``path`` (for bands, DOS, forces)."""
    import json
    from pathlib import Path

    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    from scifm import dft
    from scifm._runs import read_json

    run = Path(path)
    if not (run / "result.json").is_file():
        raise UserError(f"{path} holds no finished ground state (no result.json); run scifm dft ground-state first")
    config = read_json(run / "config.json", f"delete {path} and run the ground state again")
    result = read_json(run / "result.json", f"delete {path} and run the ground state again")
    if config.get("kind") != "dft-ground-state":
        raise UserError(f"{path} is not a dft ground-state run")
    crystal = dft.Crystal(np.array(config["lattice_bohr"]), tuple(config["symbols"]), np.array(config["positions"]))
    kpoints = dft.KPoints(np.array(result["kpoints"]), np.array(result["kpoint_weights"]))
    symmetry = None
    if config["method"] == "scf":  # irreducible k-points: the density is symmetrised
        symmetry = dft.Symmetry.of(crystal).for_mesh(config["kpts"])
        if not np.allclose(symmetry.irreducible(config["kpts"]).reduced, kpoints.reduced):
            raise UserError(f"{path}'s k-points are not this version's irreducible ones; run the ground state again")
    basis = dft.PlaneWaves.build(crystal, kpoints, config["ecut"])
    h = dft.Hamiltonian.build(basis, dft.functional(config["xc"]), symmetry=symmetry)
    shapes = json.loads((run / "model.json").read_text())
    like = {"coeffs": jnp.zeros(shapes["coeffs_shape"], jnp.complex128), "occupations": jnp.zeros(shapes["occupations_shape"])}
    try:
        tree = eqx.tree_deserialise_leaves(run / "checkpoint.eqx", like)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{run / 'checkpoint.eqx'} is corrupt ({type(e).__name__}); run the ground state again") from None
    return dft.GroundState(
        hamiltonian=h, positions=crystal.positions, coeffs=tree["coeffs"], occupations=tree["occupations"],
        eigenvalues=np.array(result["eigenvalues"]), energies=result["energies"], fermi_level=result["fermi_level"],
        temperature=config["smearing"], steps=result["steps"], converged=result["converged"],
    )


@app.command("bands")
def bands(
    run: str = typer.Argument(..., help="A finished ground-state run directory."),
    path: str = typer.Option(None, "--path", help="Special points, e.g. LGXWKG (G is Gamma) [default for fcc: LGXWKG]."),
    n_bands: int = typer.Option(None, "--bands", min=1, help="Bands to plot [default: ground state's + 4]."),
    dos_mesh: str = typer.Option("8,8,8", "--dos-kpts", help="k-mesh of the density of states N1,N2,N3."),
    width: float = typer.Option(0.1, "--width", parser=positive, help="Gaussian broadening of the DOS (eV)."),
):
    """Band structure along a k-path and density of states at the converged density
    (non-self-consistent): RUN/bands.png, RUN/dos.png, RUN/bands.json.

    Example: scifm dft bands runs/si --path LGXWKG
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    from pathlib import Path

    from scifm import dft
    from scifm._io import atomic_write_json, save_figure
    from scifm.dft._plots import plot_bands, plot_dos

    gs = load(run)
    mesh = _kpts(dos_mesh)
    band = dft.band_structure(gs, path, bands=n_bands)
    energies, dos = dft.density_of_states(gs, mesh=mesh, bands=n_bands, width=width)
    name = "".join(gs.hamiltonian.basis.crystal.symbols[:1])
    save_figure(plot_bands(band, f"{name}: bands (0 = valence top / Fermi level)"), Path(run) / "bands.png")
    save_figure(plot_dos(energies, dos, f"{name}: density of states ({width} eV Gaussian)"), Path(run) / "dos.png")
    atomic_write_json(Path(run) / "bands.json", {**band.to_json(), "dos_energy_ev": energies.tolist(), "dos": dos.tolist()})
    e = (band.eigenvalues - band.reference) * dft.HARTREE_EV
    occupied = gs.hamiltonian.electrons // 2
    if gs.temperature == 0 and e.shape[1] > occupied:
        gap = e[:, occupied].min() - e[:, occupied - 1].max()
        print(f"band gap on the path: {gap:.3f} eV")
    for i, label in band.labels:
        print(f"{'Γ' if label == 'G' else label}: " + " ".join(f"{v:8.3f}" for v in e[i]) + " eV")
    print(f"wrote {run}/bands.png, {run}/dos.png, {run}/bands.json")
