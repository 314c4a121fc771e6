"""Optimisers for the direct minimiser: steps and wall time to reach the SCF free energy.

The same parameterisation (orbitals by QR, occupations by ``diag(V V^T)``), the same random
start; only the optimiser changes. "precond" optimises ``W' = W / s`` with the kinetic
scaling ``s = (1 + |k+G|^2/2)^(-1/2)`` (``Direct(precondition=True)``). The reference is the
dense SCF free energy of the same case; times include the first step's compilation and are
taken on this machine in this run.

    .venv/bin/python benchmarks/dft_optimisers.py [--cases si-10-2,al-6-2] [--max-steps 10000]
    .venv/bin/python benchmarks/dft_optimisers.py --cases si8-10-2 --optimisers lbfgs,"lbfgs + precond"
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import optax  # noqa: E402

from scifm import dft  # noqa: E402
from scifm.bench import machine  # noqa: E402

CASES = {  # name: (crystal, ecut, mesh, bands, smearing)
    "si-10-2": (dft.Crystal.diamond("Si", 10.26), 10.0, (2, 2, 2), 4, 0.0),
    "al-6-2": (dft.Crystal.fcc("Al", 7.65), 6.0, (2, 2, 2), 6, 0.01),
    "si8-10-2": (dft.Crystal.diamond("Si", 10.26, cubic=True), 10.0, (2, 2, 2), 16, 0.0),
}

OPTIMISERS = {  # name: (optimizer, precondition)
    "adam 1e-2 (paper)": (lambda: optax.adam(1e-2, b2=0.99), False),
    "adam 1e-2 + precond": (lambda: optax.adam(1e-2, b2=0.99), True),
    "lbfgs": (lambda: optax.lbfgs(), False),
    "lbfgs + precond": (lambda: optax.lbfgs(), True),
}


class Recorder:
    """A progress display that keeps (seconds since start, free energy) of every step."""

    def start(self, total, done):
        self.t0, self.rows = time.perf_counter(), []

    def step(self, value, samples):
        self.rows.append((time.perf_counter() - self.t0, value))

    def evaluated(self, *args):
        pass

    def close(self):
        pass


def first_within(rows, reference, threshold):
    for step, (seconds, value) in enumerate(rows, start=1):
        if value - reference < threshold:
            return step, seconds
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="si-10-2,al-6-2")
    parser.add_argument("--optimisers", default=",".join(OPTIMISERS))
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0, help="random initial orbitals and occupations")
    parser.add_argument("--threshold", type=float, default=1e-6, help="Hartree above the SCF energy")
    args = parser.parse_args()
    print(f"machine: {machine()['processor']} ({machine()['cpus']} cores), {jax.devices()[0].device_kind}")
    print(f"| case | optimiser | steps to {args.threshold:g} Ha | s to {args.threshold:g} Ha | ms / step | final F - F_SCF (Ha) | steps run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.cases.split(","):
        crystal, ecut, mesh, bands, smearing = CASES[name]
        common = dict(ecut=ecut, kpts=mesh, bands=bands, smearing=smearing)
        reference = dft.ground_state(crystal, **common).energies["free_energy"]
        for label in args.optimisers.split(","):
            make, precondition = OPTIMISERS[label]
            method = dft.Direct(
                seed=args.seed,
                optimizer=make(), precondition=precondition, max_steps=args.max_steps,
                tolerance=1e-11, gradient_tolerance=1e-7,
            )
            recorder = Recorder()
            gs = dft.ground_state(crystal, **common, method=method, progress=recorder)
            step, seconds = first_within(recorder.rows, reference, args.threshold)
            per_step = 1000 * (recorder.rows[-1][0] - recorder.rows[0][0]) / max(len(recorder.rows) - 1, 1)
            final = gs.energies["free_energy"] - reference
            reached = (str(step), f"{seconds:.1f}") if step else (f"> {len(recorder.rows)}", "-")
            print(f"| {name} | {label} | {reached[0]} | {reached[1]} | {per_step:.1f} | {final:.1e} | {len(recorder.rows)} |", flush=True)


if __name__ == "__main__":
    main()
