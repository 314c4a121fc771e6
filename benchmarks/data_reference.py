"""The transfer study's own Poisson generator and `scifm generate` side by side, whole processes.

Issue #18 compares scifm's data generation with the generator of Subramanian et al. 2023
(``utils/gen_data_poisson.py`` of ShashankSubramanian/neuraloperators-TL-scaling, unmodified,
with the arguments of its ``run_gen_data.sh``: 144 bumps, sparse, 128 x 128, eigenvalues of K
in [1, 5]) as a user runs each: a fresh process that draws, solves and writes ``--n`` samples
to HDF5. The two alternate, the order flipping every round; medians are reported.

The reference imports NumPy, SciPy, PyTorch, Matplotlib and h5py, all in scifm's ``bench``
environment, so scifm's interpreter runs it by default::

    git clone https://github.com/ShashankSubramanian/neuraloperators-TL-scaling /tmp/tlref
    .venv/bin/python benchmarks/data_reference.py --reference /tmp/tlref

Prints a table (seconds per whole process, samples per second, ratio reference / scifm) and
writes JSON (``--out``, default ``benchmarks/results/data_reference.json``; never replaced
without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scifm._checks import UserError
from scifm.bench import machine, run_script, time_process

RESOLUTION = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference",
        required=True,
        help="checkout of neuraloperators-TL-scaling (holds utils/gen_data_poisson.py)",
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for the reference (default: this)"
    )
    parser.add_argument("--n", type=int, default=2048, help="samples per process (>= 4)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the median is reported"
    )
    parser.add_argument("--out", default="benchmarks/results/data_reference.json")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def check() -> Path:
        script = Path(args.reference) / "utils" / "gen_data_poisson.py"
        if not script.is_file():
            raise UserError(
                f"--reference {args.reference} has no utils/gen_data_poisson.py: give a "
                "checkout of neuraloperators-TL-scaling"
            )
        if shutil.which(args.python) is None:
            raise UserError(f"--python {args.python} is not an interpreter")
        if args.n < 4 or args.rounds < 1:  # the reference splits n over four sparsity levels
            raise UserError(f"--n must be >= 4 and --rounds >= 1, got {args.n} and {args.rounds}")
        return script

    return run_script(check, lambda script: _measure(script, args), args.out, args.overwrite)


def _measure(script: Path, args) -> dict:
    scifm = shutil.which("scifm", path=str(Path(sys.executable).parent)) or "scifm"
    seconds: dict[str, list[float]] = {"reference": [], "scifm": []}
    with tempfile.TemporaryDirectory(prefix="scifm-data-reference-") as tmp:
        commands = {
            "reference": [
                args.python, str(script.resolve()), "--ntrain", str(args.n), "--nval", "0",
                "--ntest", "0", "--ng", "144", "--sparse", "--n", str(RESOLUTION),
                "--datapath", tmp, "--e1", "1", "--e2", "5",
            ],
            "scifm": [
                scifm, "generate", "poisson", "--n", str(args.n), "--resolution", str(RESOLUTION),
                "--out", str(Path(tmp) / "poisson.h5"),
            ],
        }  # fmt: skip
        for r in range(args.rounds):
            order = ["reference", "scifm"] if r % 2 == 0 else ["scifm", "reference"]
            for who in order:
                for old in Path(tmp).glob("*.h5"):  # each writes a new file, as a user's first run
                    old.unlink()
                took, _ = time_process(commands[who], tmp)
                seconds[who].append(took)
                print(
                    f"round {r + 1}/{args.rounds} {who:9s} {took:7.1f} s  "
                    f"{args.n / took:8.1f} samples/s",
                    flush=True,
                )
    ref, ours = statistics.median(seconds["reference"]), statistics.median(seconds["scifm"])
    print(
        "\n| what | reference generator | scifm generate | reference / scifm |\n"
        "| --- | --- | --- | --- |\n"
        f"| Poisson {RESOLUTION}x{RESOLUTION}, {args.n} samples, whole process (median of "
        f"{args.rounds}) | {ref:.1f} s ({args.n / ref:.1f}/s) | {ours:.2f} s "
        f"({args.n / ours:.0f}/s) | **{ref / ours:.1f}x** |"
    )
    return {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "n": args.n,
        "resolution": RESOLUTION,
        "rounds": args.rounds,
        "seconds": seconds,
        "median_seconds": {"reference": ref, "scifm": ours},
        "samples_per_s": {"reference": args.n / ref, "scifm": args.n / ours},
        "speedup": ref / ours,
        "commands": {who: " ".join(cmd) for who, cmd in commands.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
