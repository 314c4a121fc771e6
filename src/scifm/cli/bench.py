"""`scifm bench ...`: benchmarks that print a table and write JSON (one subcommand each).

Every subcommand checks its options and its ``--out`` before measuring: a bad value, an
unusable output path or an existing file (without ``--overwrite``) ends it at once with one
line and exit status 2, and nothing is written. Without ``--out`` the results go to a fresh
``bench-<name>-<YYYYmmdd-HHMMSS>.json`` in the current directory, so a plain run never
replaces earlier results, the tracked ones under ``benchmarks/results/`` included.
"""

from __future__ import annotations

import typer

from scifm._checks import UserError
from scifm.cli._parse import parse_list

app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)


def _out_option(name: str):
    return typer.Option(
        None,
        "--out",
        help=f"JSON results file [default: bench-{name}-YYYYmmdd-HHMMSS.json in the current "
        "directory]. Its directory must exist; an existing file is refused unless --overwrite. "
        "Checked before measuring, written atomically at the end.",
    )


def _overwrite_option():
    return typer.Option(
        False,
        "--overwrite",
        help="Replace --out if it exists (the old file stays until the new results are complete).",
    )


def _list(option: str, text: str, cast=str) -> tuple:
    """A comma-separated option with at least one value."""
    values = parse_list(option, text, cast)
    if not values:
        raise UserError(
            f"{option} takes a comma-separated list of at least one value, got {text!r}"
        )
    return values


def _output(name: str, out: str | None, overwrite: bool):
    from scifm import bench

    return bench.check_output(out or bench.default_output(name), overwrite=overwrite)


def _print(console, table) -> None:
    from rich.table import Table

    shown = Table(*table.columns, title=table.title)
    for row in table.rows:
        shown.add_row(*row)
    console.print(shown)


def _live(console, render):
    """A per-result callback printing ``column=value`` of the one row ``render([row])`` gives."""

    def show(row):
        table = render([row])
        cells = zip(table.columns, table.rows[0], strict=True)
        line = "  ".join(f"{c}={v}" for c, v in cells if v not in ("", "-"))
        console.print(line, markup=False, soft_wrap=True)

    return show


@app.command("data")
def bench_data(
    resolution: int = typer.Option(128, "--resolution", help="Grid points per side (even, >= 16)."),
    n: int = typer.Option(4096, "--n", help="Samples per system for the speed measurement (>= 1)."),
    memory_n: str = typer.Option(
        "1024,8192", "--memory-n", help="Sample counts (>= 1) whose peak memory is compared."
    ),
    out: str = _out_option("data"),
    overwrite: bool = _overwrite_option(),
):
    """Dataset generation: samples/s per system (into HDF5) and peak memory against n."""
    from rich.console import Console

    from scifm import bench

    counts = _list("--memory-n", memory_n, int)
    path = _output("data", out, overwrite)
    console = Console()
    result = bench.bench_data(
        resolution=resolution, n=n, memory_n=counts, report=_live(console, bench.data_table)
    )
    _print(console, bench.data_table(result["rows"]))
    print(f"machine: {result['machine']['processor']}, {result['machine']['cpus']} CPUs")
    print(f"wrote {bench.write_json(result, path, overwrite=overwrite)}")


@app.command("fno")
def bench_fno(
    presets: str = typer.Option("all", "--presets", help="Comma-separated presets, or all."),
    resolutions: str = typer.Option("64,128", "--resolutions", help="Grid sizes (>= 1)."),
    steps: int = typer.Option(
        5, "--steps", help="Timed steps after compilation (>= 1; median reported)."
    ),
    peer: bool = typer.Option(
        None,
        "--peer/--no-peer",
        help="Time the same FNO in PyTorch beside each preset, steps alternating [default: "
        "where PyTorch is installed, the bench extra]; --peer without PyTorch is refused.",
        show_default=False,
    ),
    out: str = _out_option("fno"),
    overwrite: bool = _overwrite_option(),
):
    """FNO training step (Adam, relative L2): median time after compile and XLA memory per
    preset, beside the same network in PyTorch (its time and the speed-up, peer / scifm).

    Batch 16 at 64x64 and 8 at 128x128, as the reference measurements. Presets whose modes do
    not fit a resolution are skipped with a note. scifm's step and the peer's (a worker
    process) alternate, so both see the same machine.
    """
    from rich.console import Console

    from scifm import bench
    from scifm.bench import fno
    from scifm.models import PRESETS

    names = tuple(PRESETS) if presets.strip() == "all" else _list("--presets", presets)
    sizes = _list("--resolutions", resolutions, int)
    if peer:
        fno.check_peer()
    path = _output("fno", out, overwrite)
    console = Console(width=120)
    result = fno.bench_fno(
        names, sizes, steps=steps, report=_live(console, fno.fno_table), peer=peer
    )
    _print(console, fno.fno_table(result["rows"]))
    for note in result["skipped"]:
        print(f"skipped: {note}")
    for note in result["notes"]:
        print(f"note: {note}")
    m = result["machine"]
    print(f"machine: {m['processor']}, {m['cpus']} CPUs, jax {m['jax']} ({m['backend']})")
    print(f"wrote {bench.write_json(result, path, overwrite=overwrite)}")


@app.command("federated")
def bench_federated(
    presets: str = typer.Option(
        "fno-64k,fno-1m", "--presets", help="FNO presets, comma-separated."
    ),
    clients: str = typer.Option("1,3,5,10", "--clients", help="Client counts, comma-separated."),
    resolution: int = typer.Option(32, "--resolution", help="Grid points per side."),
    local_steps: int = typer.Option(10, "--local-steps", help="Local steps per round (>= 1)."),
    rounds: int = typer.Option(3, "--rounds", help="Timed rounds after compilation (median)."),
    flower_clients: int = typer.Option(
        2, "--flower-clients", help="Clients of the Flower federation (0: skip Flower)."
    ),
    out: str = _out_option("federated"),
    overwrite: bool = _overwrite_option(),
):
    """One federated round with K clients in one compiled call (vmapped) against the same
    clients stepped one after another (MarsFL's execution model), side by side: median time
    per round, per client step, and the speed-up. Then one small federation (the first
    preset) on Flower's deployment engine on loopback and in process: Flower's overhead per
    round (needs the flower extra)."""
    from rich.console import Console

    from scifm import bench
    from scifm._checks import check_count
    from scifm.bench import federated
    from scifm.models import get_preset
    from scifm.pdes import check_resolution

    names = _list("--presets", presets)
    counts = _list("--clients", clients, int)
    for preset in names:
        if resolution < 2 * get_preset(preset).modes:
            raise UserError(f"--resolution {resolution} is too coarse for {preset}")
    for k in counts:
        check_count("--clients", k)
    check_count("--local-steps", local_steps)
    check_count("--rounds", rounds)
    check_resolution(resolution)
    if flower_clients < 0:
        raise UserError(f"--flower-clients must be >= 0, got {flower_clients}")
    if flower_clients:
        from scifm.federated import require_flower

        require_flower()
    path = _output("federated", out, overwrite)
    console = Console(width=120)
    result = federated.bench_federated(
        names, counts, resolution=resolution, local_steps=local_steps, rounds=rounds,
        report=_live(console, federated.federated_table),
    )  # fmt: skip
    _print(console, federated.federated_table(result["rows"]))
    if flower_clients:
        result["flower"] = federated.bench_flower(
            names[0], flower_clients, resolution=resolution, local_steps=local_steps,
            rounds=rounds + 1,  # round 1 compiles: the timed ones follow
        )  # fmt: skip
        _print(console, federated.flower_table(result["flower"]))
    m = result["machine"]
    print(f"machine: {m['processor']}, {m['cpus']} CPUs, jax {m['jax']} ({m['backend']})")
    print(f"wrote {bench.write_json(result, path, overwrite=overwrite)}")


@app.command("finetune")
def bench_finetune(
    model: str = typer.Option("fno-1m", "--model", help="FNO preset."),
    resolution: int = typer.Option(
        64, "--resolution", help="Grid points per side (>= 2 x the preset's modes)."
    ),
    batch: int = typer.Option(16, "--batch", help="Samples per step (>= 1)."),
    steps: int = typer.Option(10, "--steps", help="Timed steps after compilation (>= 1; median)."),
    out: str = _out_option("finetune"),
    overwrite: bool = _overwrite_option(),
):
    """Cost of each fine-tuning strategy: step time and XLA memory against full fine-tuning."""
    from rich.console import Console

    from scifm import bench
    from scifm.bench import fno

    path = _output("finetune", out, overwrite)
    result = fno.bench_finetune(model, resolution, batch, steps=steps, report=lambda r: None)
    _print(Console(width=120), fno.finetune_table(result["rows"]))
    print(f"wrote {bench.write_json(result, path, overwrite=overwrite)}")


@app.command("pinn")
def bench_pinn(
    dims: str = typer.Option(
        "100,1000,10000,100000,1000000", "--dims", help="Comma-separated dimensions d."
    ),
    estimators: str = typer.Option(
        "stde,stde-dense,hte,sdgd,sdgd-fwd,exact", "--estimators", help="Comma-separated."
    ),
    operators: str = typer.Option(
        "laplacian", "--operators", help="laplacian (Sine-Gordon) and/or biharmonic."
    ),
    num_samples: int = typer.Option(
        16, "--num-samples", help="Sampled dimensions/directions (>= 1)."
    ),
    batch_size: int = typer.Option(100, "--batch-size", help="Residual points per step (>= 1)."),
    repeats: int = typer.Option(5, "--repeats", help="Minimum timed steps per measurement (>= 1)."),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Seconds allowed per configuration (> 0)."
    ),
    out: str = _out_option("pinn"),
    overwrite: bool = _overwrite_option(),
):
    """PINN training step vs d per estimator: ms/step beside the plain (no-derivative) step,
    train it/s, peak memory (subprocess RSS and XLA's analysis). Configurations that
    cannot fit are skipped with a note."""
    from rich.console import Console

    from scifm import bench
    from scifm.bench import pinn

    parsed = (
        _list("--dims", dims, int),
        _list("--estimators", estimators),
        _list("--operators", operators),
    )
    path = _output("pinn", out, overwrite)
    console = Console(width=140)  # the table is wide; do not fold it at 80 columns
    result = pinn.bench_pinn(
        *parsed,
        num_samples=num_samples,
        batch_size=batch_size,
        repeats=repeats,
        timeout_s=timeout,
        on_result=_live(console, pinn.pinn_table),
    )
    _print(console, pinn.pinn_table(result["results"]))
    print(f"machine: {result['machine']['processor']}, {result['machine']['cpus']} CPUs")
    print(f"wrote {bench.write_json(result, path, overwrite=overwrite)}")
