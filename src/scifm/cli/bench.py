"""`scifm bench ...`: benchmarks that print a table and write JSON (one subcommand each)."""

from __future__ import annotations

import typer

from scifm.cli._parse import parse_list

app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)


@app.command("data")
def bench_data(
    resolution: int = typer.Option(128, "--resolution", help="Grid points per side."),
    n: int = typer.Option(4096, "--n", help="Samples per system for the speed measurement."),
    memory_n: str = typer.Option(
        "1024,8192", "--memory-n", help="Sample counts whose peak memory is compared."
    ),
    out: str = typer.Option("benchmarks/results/data.json", "--out", help="JSON results file."),
):
    """Dataset generation: samples/s per system (into HDF5) and peak memory against n."""
    from rich.console import Console
    from rich.table import Table

    from scifm import bench

    counts = parse_list("--memory-n", memory_n, int)
    result = bench.bench_data(resolution=resolution, n=n, memory_n=counts, report=lambda row: None)
    table = Table("system", "resolution", "n", "samples/s", *(f"peak MiB (n={m})" for m in counts))
    for row in result["rows"]:
        table.add_row(
            row["system"],
            str(row["resolution"]),
            str(row["n"]),
            f"{row['samples_per_s']:,.0f}",
            *(f"{row[f'peak_rss_mib_n{m}']:.0f}" for m in counts),
        )
    Console().print(table)
    print(f"machine: {result['machine']['processor']}, {result['machine']['cpus']} CPUs")
    print(f"wrote {bench.write_json(result, out)}")


@app.command("fno")
def bench_fno(
    presets: str = typer.Option("all", "--presets", help="Comma-separated presets, or all."),
    resolutions: str = typer.Option("64,128", "--resolutions", help="Grid sizes."),
    steps: int = typer.Option(
        5, "--steps", help="Timed steps after compilation (median reported)."
    ),
    out: str = typer.Option("benchmarks/results/fno.json", "--out", help="JSON results file."),
):
    """FNO training step (Adam, relative L2): median time after compile and XLA peak memory per preset.

    Batch 16 at 64x64 and 8 at 128x128, as the reference measurements.
    """
    from rich.console import Console
    from rich.table import Table

    from scifm import bench
    from scifm.models import PRESETS, get_preset

    names = tuple(PRESETS) if presets == "all" else parse_list("--presets", presets)
    for name in names:
        get_preset(name)
    sizes = parse_list("--resolutions", resolutions, int)
    console = Console(width=120)

    def show(row):
        console.print(
            f"{row['preset']:>9} {row['resolution']:>4} batch {row['batch']:>2}: {row['step_seconds']:.3f} s/step",
            markup=False,
        )

    result = bench.bench_fno(names, sizes, steps=steps, report=show)
    table = Table(
        "preset",
        "params",
        "res",
        "batch",
        "s/step",
        "samples/s",
        "peak MiB",
        "ref s/step",
        "speed-up",
    )
    for r in result["rows"]:
        ref = r.get("reference_step_seconds")
        table.add_row(
            r["preset"],
            f"{r['parameters']:,}",
            str(r["resolution"]),
            str(r["batch"]),
            f"{r['step_seconds']:.3f}",
            f"{r['samples_per_s']:.1f}",
            f"{r['xla_peak_mib']:.0f}" if r["xla_peak_mib"] else "-",
            f"{ref:.3f}" if ref else "",
            f"{r['speedup_vs_reference']:.2f}x" if ref else "",
        )
    console.print(table)
    for note in result["skipped"]:
        print(f"skipped: {note}")
    m = result["machine"]
    print(f"machine: {m['processor']}, {m['cpus']} CPUs, jax {m['jax']} ({m['backend']})")
    print(f"wrote {bench.write_json(result, out)}")


@app.command("finetune")
def bench_finetune(
    model: str = typer.Option("fno-1m", "--model", help="FNO preset."),
    resolution: int = typer.Option(64, "--resolution", help="Grid points per side."),
    batch: int = typer.Option(16, "--batch", help="Samples per step."),
    steps: int = typer.Option(10, "--steps", help="Timed steps after compilation (median)."),
    out: str = typer.Option("benchmarks/results/finetune.json", "--out", help="JSON results file."),
):
    """Cost of each fine-tuning strategy: step time and XLA peak memory against full fine-tuning."""
    from rich.console import Console
    from rich.table import Table

    from scifm import bench
    from scifm.models import get_preset

    get_preset(model)
    result = bench.bench_finetune(model, resolution, batch, steps=steps, report=lambda r: None)
    table = Table(
        "strategy",
        "s/step",
        "x full",
        "peak MiB",
        "x full",
        title=f"{model} at {resolution}x{resolution}, batch {batch}",
    )
    for r in result["rows"]:
        table.add_row(
            r["strategy"],
            f"{r['step_seconds']:.4f}",
            f"{r.get('time_vs_full', float('nan')):.3f}",
            f"{r['xla_peak_mib']:.0f}" if r["xla_peak_mib"] else "-",
            f"{r['memory_vs_full']:.3f}" if r.get("memory_vs_full") else "-",
        )
    Console(width=120).print(table)
    bench.write_json(result, out)
    print(f"wrote {out}")


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
    num_samples: int = typer.Option(16, "--num-samples", help="Sampled dimensions/directions."),
    batch_size: int = typer.Option(100, "--batch-size", help="Residual points per step."),
    repeats: int = typer.Option(5, "--repeats", help="Minimum timed steps per measurement."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds allowed per configuration."),
    out: str = typer.Option("benchmarks/results/pinn.json", "--out", help="JSON results file."),
):
    """PINN training step vs d per estimator: ms/step beside the plain (no-derivative) step,
    train it/s, peak memory (subprocess RSS and XLA's analysis). Configurations that
    cannot fit are skipped with a note."""
    from rich.console import Console
    from rich.table import Table

    from scifm import bench
    from scifm.bench._pinn import COLUMNS, format_table

    console = Console(width=140)  # the table is wide; do not fold it at 80 columns

    def show(row):
        cells = zip(COLUMNS, format_table([row])[0], strict=True)
        console.print("  ".join(f"{c}={v}" for c, v in cells if v not in ("", "-")))

    result = bench.bench_pinn(
        parse_list("--dims", dims, int),
        parse_list("--estimators", estimators),
        parse_list("--operators", operators),
        num_samples=num_samples,
        batch_size=batch_size,
        repeats=repeats,
        timeout_s=timeout,
        on_result=show,
    )
    table = Table(*COLUMNS)
    for row in format_table(result["results"]):
        table.add_row(*row)
    console.print(table)
    print(f"machine: {result['machine']['processor']}, {result['machine']['cpus']} CPUs")
    print(f"wrote {bench.write_json(result, out)}")
