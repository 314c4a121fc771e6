"""`scifm generate` and `scifm inspect`: exactly solved PDE datasets."""

from __future__ import annotations

import typer

from scifm._checks import UserError
from scifm.cli._parse import parse_range


def _system_options(system: str, eig, ratio, omega, integer_omega: bool, sigma=None) -> dict:
    """Range options -> keyword arguments of the system; options a system does not take are refused."""
    given = {"--eig": eig, "--ratio": ratio, "--omega": omega, "--sigma": sigma}
    accepted = {
        "poisson": {"--eig"},
        "advdiff": {"--eig", "--ratio"},
        "helmholtz": {"--omega"},
        "darcy": {"--sigma"},
    }
    names = {
        "--eig": "eig_range",
        "--ratio": "ratio_range",
        "--omega": "omega_range",
        "--sigma": "sigma_range",
    }
    options = {}
    for flag, text in given.items():
        if text is None:
            continue
        if flag not in accepted.get(system, set()):
            valid = ", ".join(sorted(accepted.get(system, ()))) or "none"
            raise UserError(f"{flag} does not apply to {system} (its range options: {valid})")
        options[names[flag]] = parse_range(flag, text)
    if integer_omega:
        if system != "helmholtz":
            raise UserError(f"--integer-omega applies to helmholtz only, not {system}")
        options["integer_omega"] = True
    return options


def generate(
    system: str = typer.Argument(
        ...,
        help="PDE system: poisson, advdiff, helmholtz or darcy (-div(a grad u) = f with a "
        "log-normal field a: inputs f and a).",
    ),
    n: int = typer.Option(..., "--n", help="Number of samples (>= 1)."),
    out: str = typer.Option(
        ..., "--out", help="Output HDF5 file (written as OUT.partial, renamed when complete)."
    ),
    resolution: int = typer.Option(128, "--resolution", help="Grid points per side (even, >= 16)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; sample i depends only on (seed, i)."),
    eig: str = typer.Option(
        None, "--eig", help="poisson/advdiff: eigenvalue range of K as LO,HI [default 1,5]."
    ),
    ratio: str = typer.Option(
        None, "--ratio", help="advdiff: advection/diffusion ratio psi as LO,HI [default 0.2,1]."
    ),
    omega: str = typer.Option(None, "--omega", help="helmholtz: omega range LO,HI [default 1,10]."),
    sigma: str = typer.Option(
        None,
        "--sigma",
        help="darcy: range LO,HI of sigma, a = 0.01 exp(sigma g) with g a unit Gaussian field "
        "[default 0.3,1].",
    ),
    integer_omega: bool = typer.Option(
        False, "--integer-omega", help="helmholtz: draw integer omega (as the reference code)."
    ),
    chunk_size: int = typer.Option(
        256, "--chunk-size", help="Samples solved and written at a time (bounds memory)."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Threads solving chunks while one writes; the file is the same for any number. "
        "[default: the CPUs available]",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace OUT if it exists (the old file stays until the new one is complete).",
    ),
):
    """Generate a dataset of exactly solved PDE samples (FFT on the periodic unit square).

    Rerunning an interrupted command with the same arguments resumes it.
    Example: scifm generate poisson --n 1024 --resolution 64 --out poisson.h5
    """
    import time

    from scifm import data, pdes

    pde = pdes.get_system(
        system, **_system_options(system, eig, ratio, omega, integer_omega, sigma)
    )
    start = time.perf_counter()
    from scifm._progress import Display

    with Display() as display:
        bar = display.bar(f"{system} {resolution}x{resolution}", n, unit="samples")
        path = data.generate(
            pde,
            n,
            resolution,
            seed,
            out,
            chunk_size=chunk_size,
            workers=workers,
            overwrite=overwrite,
            progress=bar,
        )
    elapsed = time.perf_counter() - start
    print(f"wrote {path}: {n} {system} samples at {resolution}x{resolution} in {elapsed:.1f} s")


def inspect(
    path: str = typer.Argument(
        ...,
        help="Dataset: scifm's layout, the reference code's (fields, tensor), PDEBench's Darcy or The Well's (one-step samples).",
    ),
    png: str = typer.Option(
        None, "--png", help="Where to write the picture [default: next to the file, .png]."
    ),
    samples: int = typer.Option(4, "--samples", help="Samples to draw."),
    json_out: str = typer.Option(None, "--json", help="Also write the summary as JSON here."),
):
    """Check a dataset, print a summary and write a PNG of a few samples.

    A malformed file (a dataset missing or of the wrong shape, sample counts that differ, no
    known layout) is reported in one line, exit status 2, and nothing is written.
    """
    import json
    from pathlib import Path

    from scifm import data

    with data.open(path) as ds:
        info = data.summary(ds)
        picture = data.plot_samples(ds, png or Path(path).with_suffix(".png"), samples)
    _print_summary(info)
    if json_out:
        Path(json_out).write_text(json.dumps(info, indent=2))
    print(f"picture: {picture}")


def _print_summary(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{info['path']}[/]  {info['system']}  n={info['n']}  "
        f"{'x'.join(str(k) for k in info['grid'])}  layout={info['layout']}"
    )
    if info.get("equation"):
        console.print(f"equation: {info['equation']}", markup=False)
    if info.get("ranges"):
        console.print(
            "ranges: " + ", ".join(f"{k}={v}" for k, v in info["ranges"].items()), markup=False
        )
    table = Table("column", "min", "max", "mean", "std")
    for group in ("coefficients", "parameters"):
        for name, s in info[group].items():
            table.add_row(name, *(f"{s[k]:.4g}" for k in ("min", "max", "mean", "std")))
    for key in info:
        if key.startswith(("source", "solution", "field ", "output ")):
            s = info[key]
            table.add_row(key, *(f"{s[k]:.4g}" for k in ("min", "max", "mean", "std")))
    console.print(table)
