"""scifm.dft against ABINIT, side by side: energies, FFT grids and wall times.

Writes ABINIT inputs (the same GTH-PADE numbers as scifm's table, psp10 format), runs
``abinit`` (``apt-get install abinit``; never a test dependency) and scifm's SCF on the same
cases in this process, and prints the energy differences and the time ratio.

    .venv/bin/python benchmarks/dft_abinit.py [--cases si-10-2,al-10-4,...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from scifm import dft  # noqa: E402

CASES = {  # name: (crystal, ecut, mesh, bands, smearing)
    "si-10-2": (dft.Crystal.diamond("Si", 10.26), 10.0, (2, 2, 2), 4, 0.0),
    "si-15-4": (dft.Crystal.diamond("Si", 10.26), 15.0, (4, 4, 4), 4, 0.0),
    "al-10-4": (dft.Crystal.fcc("Al", 7.65), 10.0, (4, 4, 4), 6, 0.01),
    "al-15-6": (dft.Crystal.fcc("Al", 7.65), 15.0, (6, 6, 6), 6, 0.01),
}


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


def abinit_input(crystal, ecut, mesh, bands, smearing) -> str:
    symbols = list(dict.fromkeys(crystal.symbols))
    rows = "\n".join(" ".join(f"{x:.12f}" for x in row) for row in crystal.lattice)
    xred = "\n".join(" ".join(f"{x:.12f}" for x in p) for p in crystal.positions)
    occ = f"occopt 3\ntsmear {smearing}\n" if smearing else "occopt 1\n"
    return (
        f"acell 3*1.0\nrprim\n{rows}\nntypat {len(symbols)}\nznucl {' '.join(str(Z[s]) for s in symbols)}\n"
        f"natom {len(crystal.symbols)}\ntypat {' '.join(str(symbols.index(s) + 1) for s in crystal.symbols)}\n"
        f"xred\n{xred}\necut {ecut}\nnband {bands}\nixc 7\n{occ}ngkpt {' '.join(map(str, mesh))}\n"
        f'nshiftk 1\nshiftk 0 0 0\nnstep 100\ntoldfe 1e-12\npp_dirpath "./"\n'
        f'pseudos "{", ".join(s + ".psp" for s in symbols)}"\n'
    )


def run_abinit(case, workdir: Path):
    crystal, ecut, mesh, bands, smearing = case
    for s in dict.fromkeys(crystal.symbols):
        (workdir / f"{s}.psp").write_text(psp10(dft.gth_pade(s), Z[s]))
    (workdir / "run.abi").write_text(abinit_input(crystal, ecut, mesh, bands, smearing))
    start = time.perf_counter()
    subprocess.run(["abinit", "run.abi"], cwd=workdir, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    text = (workdir / "run.abo").read_text()
    energy = float(re.search(r"total_energy\s*:\s*(\S+)", text).group(1).replace("D", "E"))
    grid = tuple(int(v) for v in re.search(r"ngfft\s+(\d+)\s+(\d+)\s+(\d+)", text).groups())
    return energy, grid, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if shutil.which("abinit") is None:
        raise SystemExit("abinit is not installed: apt-get install abinit")
    print(
        "| case | ABINIT F (Ha) | scifm F (Ha) | difference | FFT grid (both) | ABINIT s | scifm s | scifm / ABINIT |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.cases.split(","):
        case = CASES[name]
        crystal, ecut, mesh, bands, smearing = case
        with tempfile.TemporaryDirectory() as tmp:
            ref, grid, t_ref = run_abinit(case, Path(tmp))
        start = time.perf_counter()
        gs = dft.ground_state(crystal, ecut=ecut, kpts=mesh, bands=bands, smearing=smearing)
        t = time.perf_counter() - start
        ours = gs.energies["free_energy"]
        mine = gs.hamiltonian.basis.grid
        same = "same" if mine == grid else f"ABINIT {grid} vs {mine}"
        print(
            f"| {name} | {ref:.10f} | {ours:.10f} | {ours - ref:.1e} | {mine} {same} | {t_ref:.2f} | {t:.2f} | {t / t_ref:.1f} |"
        )


if __name__ == "__main__":
    main()
