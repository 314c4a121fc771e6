"""scifm.dft against ABINIT, side by side: energies, band energies, FFT grids and wall times.

Writes ABINIT inputs (the same GTH-PADE numbers as scifm's table, psp10 format), runs
``abinit`` (``apt-get install abinit``; never a test dependency) and scifm on the same cases in
this process, and prints two tables: free energies with both codes' wall times and their ratio,
and band energies at Gamma, X and L (fcc cells) from a non-self-consistent pass at the
converged density in both codes. ABINIT runs as users run it (symmetry-reduced k-points,
``toldfe 1e-12``); its band energies come from its GSR file (read with h5py) at full precision.
Each timing covers the SCF and the band pass, in both codes.

    .venv/bin/python benchmarks/dft_abinit.py [--cases si-10-2,al-10-4,...] [--solvers dense,lobpcg]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from scifm import dft  # noqa: E402
from scifm.bench import machine  # noqa: E402
from scifm.dft import FCC_POINTS, non_self_consistent  # noqa: E402

SI, AL = dft.Crystal.diamond("Si", 10.26), dft.Crystal.fcc("Al", 7.65)
CASES = {  # name: (crystal, ecut, mesh, bands, smearing)
    "si-6-2": (SI, 6.0, (2, 2, 2), 4, 0.0),
    "si-10-2": (SI, 10.0, (2, 2, 2), 4, 0.0),
    "si-20-2": (SI, 20.0, (2, 2, 2), 4, 0.0),
    "si-15-4": (SI, 15.0, (4, 4, 4), 4, 0.0),
    "al-10-4": (AL, 10.0, (4, 4, 4), 6, 0.01),
    "al-15-6": (AL, 15.0, (6, 6, 6), 6, 0.01),
    "si8-10-2": (dft.Crystal.diamond("Si", 10.26, cubic=True), 10.0, (2, 2, 2), 16, 0.0),
}
BAND_POINTS = ("G", "X", "L")
BAND_COUNT = 8  # bands compared at each point (ABINIT solves two more, which converge slowest)
SOLVERS = {"dense": dft.Dense(), "lobpcg": dft.LOBPCG()}


def psp10(pseudo: dft.GTH, z: int) -> str:
    lines = [
        f"GTH-PADE {pseudo.symbol} (scifm table)",
        f"{z} {pseudo.zion} 961231 zatom,zion,pspdat",
    ]
    lmax = max(len(pseudo.channels) - 1, 0)
    lines.append(f"10 7 {lmax} 0 2001 0 pspcod,pspxc,lmax,lloc,mmax,r2well")
    c = [x for x in pseudo.c]
    lines.append(f"{pseudo.r_loc:.8f} {len(c)} " + " ".join(f"{x:.8f}" for x in c) + " rloc nloc c")
    lines.append(f"{len(pseudo.channels)} nnonloc")
    for l, (r, h) in enumerate(pseudo.channels):
        n = len(h)
        first = " ".join(f"{h[0][j]:.8f}" for j in range(n)) if n else ""
        lines.append(f"{r:.8f} {n} {first}")
        for i in range(1, n):
            lines.append(" ".join(f"{h[i][j]:.8f}" for j in range(i, n)))
        if l > 0:
            for i in range(n):
                lines.append(" ".join("0.0" for _ in range(i, n)))
    return "\n".join(lines) + "\n"


Z = {"Si": 14, "Al": 13, "C": 6}


def abinit_input(crystal, ecut, mesh, bands, smearing, band_points=()) -> str:
    """Dataset 1: the SCF; dataset 2 (if ``band_points``): bands there at the SCF density."""
    symbols = list(dict.fromkeys(crystal.symbols))
    rows = "\n".join(" ".join(f"{x:.12f}" for x in row) for row in crystal.lattice)
    xred = "\n".join(" ".join(f"{x:.12f}" for x in p) for p in crystal.positions)
    occ = f"occopt 3\ntsmear {smearing}\n" if smearing else "occopt 1\n"
    text = (
        f"acell 3*1.0\nrprim\n{rows}\nntypat {len(symbols)}\nznucl {' '.join(str(Z[s]) for s in symbols)}\n"
        f"natom {len(crystal.symbols)}\ntypat {' '.join(str(symbols.index(s) + 1) for s in crystal.symbols)}\n"
        f"xred\n{xred}\necut {ecut}\nixc 7\n{occ}ngkpt {' '.join(map(str, mesh))}\n"
        f'nshiftk 1\nshiftk 0 0 0\nnstep 100\nchkprim 0\npp_dirpath "./"\n'
        f'pseudos "{", ".join(s + ".psp" for s in symbols)}"\n'
    )
    if not band_points:
        return text + f"nband {bands}\ntoldfe 1e-12\n"
    kpts = "  ".join(" ".join(str(x) for x in FCC_POINTS[p]) for p in band_points)
    return text + (
        f"ndtset 2\nnband1 {bands}\ntoldfe1 1e-12\nkptopt1 1\n"
        f"iscf2 -2\ngetden2 1\nkptopt2 0\nnkpt2 {len(band_points)}\nkpt2 {kpts}\n"
        f"nband2 {BAND_COUNT + 2}\ntolwfr2 1e-18\nnstep2 300\n"
    )


def run_abinit(case, workdir: Path, band_points):
    crystal, ecut, mesh, bands, smearing = case
    for s in dict.fromkeys(crystal.symbols):
        (workdir / f"{s}.psp").write_text(psp10(dft.gth_pade(s), Z[s]))
    (workdir / "run.abi").write_text(abinit_input(crystal, ecut, mesh, bands, smearing, band_points))
    start = time.perf_counter()
    subprocess.run(["abinit", "run.abi"], cwd=workdir, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    text = (workdir / "run.abo").read_text()
    energy = float(re.search(r"total_energy\s*:\s*(\S+)", text).group(1).replace("D", "E"))
    grid = tuple(int(v) for v in re.search(r"ngfft\d?\s+(\d+)\s+(\d+)\s+(\d+)", text).groups())
    eigenvalues = None
    if band_points:
        with h5py.File(workdir / "runo_DS2_GSR.nc") as f:
            eigenvalues = np.asarray(f["eigenvalues"])[0, :, :BAND_COUNT]
    return energy, grid, seconds, eigenvalues


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--solvers", default="dense,lobpcg", help="scifm eigensolvers to time")
    parser.add_argument("--dense-max-atoms", type=int, default=4, help="skip dense eigh above this")
    args = parser.parse_args()
    if shutil.which("abinit") is None:
        raise SystemExit("abinit is not installed: apt-get install abinit")
    solvers = args.solvers.split(",")
    print(f"machine: {machine()['processor']} ({machine()['cpus']} cores); scifm on {jax.devices()[0].device_kind}, warm = the same case rerun in this process")
    print(
        "| case | atoms | ABINIT F (Ha) | scifm F (Ha) | difference | FFT grid (both) | ABINIT s | "
        + " | ".join(f"scifm {s} s | warm | warm / ABINIT" for s in solvers) + " |"
    )
    print("| --- " * (7 + 3 * len(solvers)) + "|")
    band_rows = []
    for name in args.cases.split(","):
        case = CASES[name]
        crystal, ecut, mesh, bands, smearing = case
        points = BAND_POINTS if crystal.is_fcc_primitive else ()
        with tempfile.TemporaryDirectory() as tmp:
            ref, grid, t_ref, ref_bands = run_abinit(case, Path(tmp), points)
        cells, ours = [], None
        for solver in solvers:
            if solver == "dense" and len(crystal.symbols) > args.dense_max_atoms:
                cells.append("- | - | -")  # minutes per SCF cycle: O(npw^3) per k-point
                continue
            times = []
            for _ in range(2):  # cold (compiling), then warm
                start = time.perf_counter()
                gs = dft.ground_state(
                    crystal, ecut=ecut, kpts=mesh, bands=bands, smearing=smearing,
                    method=dft.SCF(eigensolver=SOLVERS[solver]),
                )
                if points:
                    kpoints = dft.KPoints.path(np.array([FCC_POINTS[p] for p in points]))
                    our_bands = non_self_consistent(gs, kpoints, BAND_COUNT)
                times.append(time.perf_counter() - start)
            ours = gs.energies["free_energy"]
            cells.append(f"{times[0]:.2f} | {times[1]:.2f} | {times[1] / t_ref:.1f}")
        mine = gs.hamiltonian.basis.grid
        same = "same" if mine == grid else f"ABINIT {grid} vs {mine}"
        print(
            f"| {name} | {len(crystal.symbols)} | {ref:.10f} | {ours:.10f} | {ours - ref:.1e} | {mine} {same} | "
            f"{t_ref:.2f} | " + " | ".join(cells) + " |",
            flush=True,
        )
        if points:
            for p, mine_k, ref_k in zip(points, our_bands, ref_bands, strict=True):
                band_rows.append((name, p, mine_k, ref_k))
    if band_rows:
        print(f"\nband energies (Ha), lowest {BAND_COUNT}, at the converged density:\n")
        print("| case | point | ABINIT | scifm | max abs difference |")
        print("| --- | --- | --- | --- | --- |")
        for name, p, mine_k, ref_k in band_rows:
            show = lambda e: " ".join(f"{x:.6f}" for x in e)  # noqa: E731
            print(f"| {name} | {p} | {show(ref_k)} | {show(mine_k)} | {np.max(np.abs(mine_k - ref_k)):.1e} |")


if __name__ == "__main__":
    main()
