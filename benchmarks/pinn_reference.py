"""The STDE authors' Sine-Gordon script and `scifm pinn` side by side, whole processes.

Issue #18 asks for scifm's PINN at d = 1000 to run at least 2x faster than the reference STDE
script as a user runs it (a whole process: start-up, compilation, test data, training,
evaluation). This times both, alternating their order every round, on the same problem:
two-body Sine-Gordon ``Lap u + sin u = g`` on the unit ball, sparse STDE with 16 sampled
dimensions, 100 residual points per step, Adam 1e-3 decayed linearly to 0, 20,000 test
points, float32, the same MLP (width 128; the script's ``--PINN_L 4`` is 3 hidden tanh layers,
scifm's ``--depth 3``). Each side evaluates twice (the script at steps 0 and ``steps - 1``,
its own schedule with ``--eval_every steps - 1``; scifm after ``steps / 2`` and the last step).

The reference needs its own environment (dm-haiku), with the same JAX as scifm's:

    python -m venv /tmp/stde-env
    /tmp/stde-env/bin/pip install "jax==$(.venv/bin/python -c 'import jax; print(jax.__version__)')" \
        dm-haiku optax jaxtyping tqdm
    git clone https://github.com/sail-sg/stde /tmp/stde   # sine_gordon.py, unmodified

    .venv/bin/python benchmarks/pinn_reference.py --reference /tmp/stde --python /tmp/stde-env/bin/python

Prints a table (seconds per whole process, relative L2, ratio reference / scifm) and writes
JSON (``--out``, default ``benchmarks/results/pinn_reference.json``; never replaced without
``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scifm._checks import UserError
from scifm.bench import machine, run_script, time_process

# scifm as on a first run: its persistent compilation cache off whatever the environment
# says (with SCIFM_COMPILATION_CACHE=on a rerun skips ~4 s; the reference has no such cache)
_FIRST_RUN = {"SCIFM_COMPILATION_CACHE": "off"}


def _reference_error(output: str) -> float:
    found = re.findall(r"l2_rel=([0-9.eE+-]+)", output)
    if not found:
        raise UserError(
            "the reference script printed no l2_rel=; is it sine_gordon.py of sail-sg/stde?"
        )
    return float(found[-1])


def _reference_rate(output: str) -> float | None:
    """The training loop's rate from the script's tqdm bar (the last ``N.NNit/s``)."""
    found = re.findall(r"([0-9.]+)it/s", output)
    return float(found[-1]) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", required=True, help="checkout of sail-sg/stde (holds sine_gordon.py)"
    )
    parser.add_argument(
        "--python", required=True, help="interpreter of the reference's environment (dm-haiku)"
    )
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds; the median is reported"
    )
    parser.add_argument("--out", default="benchmarks/results/pinn_reference.json")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def check() -> Path:
        script = Path(args.reference) / "sine_gordon.py"
        if not script.is_file():
            raise UserError(
                f"--reference {args.reference} has no sine_gordon.py: give a checkout of sail-sg/stde"
            )
        if shutil.which(args.python) is None:
            raise UserError(
                f"--python {args.python} is not an interpreter; see this script's docstring"
            )
        for name in ("dim", "steps", "rounds"):
            if getattr(args, name) < (2 if name == "steps" else 1):
                raise UserError(
                    f"--{name} must be a positive integer (--steps at least 2), got {getattr(args, name)}"
                )
        return script

    return run_script(check, lambda script: _measure(script, args), args.out, args.overwrite)


def _measure(script: Path, args) -> dict:
    scifm = shutil.which("scifm", path=str(Path(sys.executable).parent)) or "scifm"
    reference = [
        args.python, script.name, "--dim", str(args.dim), "--epochs", str(args.steps), "--sparse",
        "--rand_batch_size", "16", "--N_f", "100", "--N_test", "20000", "--PINN_h", "128",
        "--PINN_L", "4", "--lr", "1e-3", "--eval_every", str(args.steps - 1), "--SEED", "0",
    ]  # fmt: skip
    rows = {"reference": [], "scifm": []}
    errors = {"reference": [], "scifm": []}
    training = {"reference": [], "scifm": []}  # seconds in the training loop, as each reports it
    with tempfile.TemporaryDirectory(prefix="scifm-pinn-reference-") as tmp:
        for r in range(args.rounds):
            order = ["reference", "scifm"] if r % 2 == 0 else ["scifm", "reference"]
            for who in order:
                if who == "reference":
                    seconds, output = time_process(reference, script.parent)
                    error = _reference_error(output)
                    rate = _reference_rate(output)
                    training[who].append(None if rate is None else args.steps / rate)
                else:
                    run_dir = Path(tmp) / f"round-{r}"
                    cmd = [
                        scifm, "pinn", "--pde", "sine-gordon-2body", "--dim", str(args.dim), "--estimator", "stde",
                        "--num-samples", "16", "--steps", str(args.steps), "--width", "128", "--depth", "3",
                        "--batch-size", "100", "--lr", "1e-3", "--n-test", "20000",
                        "--eval-every", str(args.steps // 2), "--seed", "0", "--out", str(run_dir),
                    ]  # fmt: skip
                    seconds, _ = time_process(cmd, Path(tmp), _FIRST_RUN)
                    result = json.loads((run_dir / "result.json").read_text())
                    error = result["rel_l2"]
                    training[who].append(result["train_time_s"])  # includes its evaluations
                rows[who].append(seconds)
                errors[who].append(error)
                loop = training[who][-1]
                print(
                    f"round {r + 1}/{args.rounds} {who:9s} {seconds:7.1f} s  relative L2 {error:.2e}"
                    + ("" if loop is None else f"  (training loop {loop:.1f} s)"),
                    flush=True,
                )
    ref, ours = statistics.median(rows["reference"]), statistics.median(rows["scifm"])
    print("\n| what | reference script | scifm | reference / scifm |\n| --- | --- | --- | --- |")
    print(
        f"| whole process, d = {args.dim}, {args.steps} steps (median of {args.rounds}) | "
        f"{ref:.1f} s | {ours:.1f} s | **{ref / ours:.2f}x** |"
    )
    print(
        f"| relative L2 at the end | {statistics.median(errors['reference']):.2e} | "
        f"{statistics.median(errors['scifm']):.2e} | |"
    )
    return {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "dim": args.dim,
        "steps": args.steps,
        "rounds": args.rounds,
        "seconds": rows,
        "rel_l2": errors,
        "training_loop_seconds": training,
        "median_seconds": {"reference": ref, "scifm": ours},
        "speedup": ref / ours,
        "reference_command": " ".join(reference),
    }


if __name__ == "__main__":
    sys.exit(main())
