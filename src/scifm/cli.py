"""The `scifm` command line: thin wrappers that parse, call library functions and print.

User errors (bad values, missing files, existing outputs) print one line on stderr and exit
with status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="scifm",
    help="Scientific foundation models: exact PDE data, neural operators, transfer studies, "
    "high-dimensional PINNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


# ---------------------------------------------------------------------------------------------
# Commands are added below, each in its own section.
# ---------------------------------------------------------------------------------------------

# --- PINNs ---


@app.command()
def pinn(
    pde: str = typer.Option(
        "allen-cahn-2body",
        "--pde",
        help="Problem: {poisson,allen-cahn,sine-gordon}-{2body,3body}, biharmonic-3body; "
        "append -gpinn for the gradient-enhanced loss.",
    ),
    dim: int = typer.Option(100, "--dim", help="Dimension d of the PDE."),
    estimator: str = typer.Option(
        "stde", "--estimator", help="exact, stde, stde-dense, hte, sdgd or sdgd-fwd."
    ),
    num_samples: int = typer.Option(16, "--num-samples", help="Sampled dimensions/directions."),
    steps: int = typer.Option(10_000, "--steps", help="Adam steps (lr decays linearly to 0)."),
    out: str = typer.Option(
        None, "--out", help="Run directory (config, metrics, checkpoint, plot); resumes if present."
    ),
    width: int = typer.Option(128, "--width", help="MLP width."),
    depth: int = typer.Option(4, "--depth", help="MLP hidden layers."),
    batch_size: int = typer.Option(100, "--batch-size", help="Residual points per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Initial learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for the solution's c_i, the model, points."),
    n_test: int = typer.Option(20_000, "--n-test", help="Test points for the relative L2 error."),
    eval_every: int = typer.Option(1000, "--eval-every", help="Steps between evaluations."),
    checkpoint_every: int = typer.Option(
        500, "--checkpoint-every", help="Steps between checkpoints."
    ),
    float64: bool = typer.Option(False, "--float64", help="Train in float64 (default float32)."),
):
    """Train a hard-constrained PINN (u = p(|x|^2) * MLP(x), zero on the boundary) on a
    high-dimensional PDE with an exact solution; report the relative L2 error.

    Example: scifm pinn --pde allen-cahn-2body --dim 100000 --estimator stde --steps 10000 --out runs/ac
    """
    import time

    import jax

    if float64:
        jax.config.update("jax_enable_x64", True)
    from scifm import pinn as pinn_lib
    from scifm._progress import Display

    est = pinn_lib.make_estimator(estimator, num_samples)
    if dim < 1 or dim > 10_000_000:
        raise ValueError(f"--dim must be in [1, 10^7], got {dim}")
    problem = pinn_lib.make_problem(pde, dim, key=jax.random.key(seed))
    config = {"pde": pde, "dim": dim, "estimator_name": estimator, "num_samples": num_samples}
    start = time.perf_counter()
    with Display() as display:
        bar = display.bar(f"{pde} d={dim} {estimator}", steps)
        state = {"rel": "", "first": None}

        def on_step(n, row):
            if state["first"] is None:  # resumed steps do not count towards the rate
                state["first"] = n - 1
            if "rel_l2" in row:
                state["rel"] = f" rel_l2 {row['rel_l2']:.2e}"
            rate = (n - state["first"]) / max(time.perf_counter() - start, 1e-9)
            bar.update(completed=n, info=f"loss {row['loss']:.3e}{state['rel']} {rate:.1f} it/s")

        _, result = pinn_lib.fit(
            problem,
            est,
            steps=steps,
            width=width,
            depth=depth,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            n_test=n_test,
            eval_every=eval_every,
            checkpoint_every=checkpoint_every,
            run_dir=out,
            config=config,
            callback=on_step,
        )
    print(
        f"{pde} d={dim} {estimator}: relative L2 {result['rel_l2']:.3e} after {steps} steps "
        f"({result['train_time_s']:.1f} s of training)"
    )
    if out:
        print(f"run directory: {out} (config.json, metrics.jsonl, final.json, loss.png)")


@bench_app.command("pinn")
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

    from scifm import bench
    from scifm.bench._pinn import COLUMNS, format_table

    def parse_list(option, text, cast=str):
        try:
            return tuple(cast(float(v)) if cast is int else cast(v) for v in text.split(",") if v)
        except ValueError:
            raise ValueError(f"{option} takes a comma-separated list, got {text!r}") from None

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
    from rich.table import Table

    table = Table(*COLUMNS)
    for row in format_table(result["results"]):
        table.add_row(*row)
    console.print(table)
    print(f"machine: {result['machine']['processor']}, {result['machine']['cpus']} CPUs")
    print(f"wrote {bench.write_json(result, out)}")


# --- data ---


def _range(option: str, text: str | None) -> tuple[float, float] | None:
    """Parse ``LO,HI`` into two floats; one line of error otherwise."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(
            f"{option} takes LO,HI (two numbers separated by a comma), got {text!r}"
        ) from None


def _system_options(system: str, eig, ratio, omega, integer_omega: bool) -> dict:
    """Range options -> keyword arguments of the system; options a system does not take are refused."""
    given = {"--eig": eig, "--ratio": ratio, "--omega": omega}
    accepted = {"poisson": {"--eig"}, "advdiff": {"--eig", "--ratio"}, "helmholtz": {"--omega"}}
    names = {"--eig": "eig_range", "--ratio": "ratio_range", "--omega": "omega_range"}
    options = {}
    for flag, text in given.items():
        if text is None:
            continue
        if flag not in accepted.get(system, set()):
            valid = ", ".join(sorted(accepted.get(system, ()))) or "none"
            raise ValueError(f"{flag} does not apply to {system} (its range options: {valid})")
        options[names[flag]] = _range(flag, text)
    if integer_omega:
        if system != "helmholtz":
            raise ValueError(f"--integer-omega applies to helmholtz only, not {system}")
        options["integer_omega"] = True
    return options


@app.command()
def generate(
    system: str = typer.Argument(..., help="PDE system: poisson, advdiff or helmholtz."),
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
    integer_omega: bool = typer.Option(
        False, "--integer-omega", help="helmholtz: draw integer omega (as the reference code)."
    ),
    chunk_size: int = typer.Option(
        256, "--chunk-size", help="Samples solved and written at a time (bounds memory)."
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

    pde = pdes.get_system(system, **_system_options(system, eig, ratio, omega, integer_omega))
    start = time.perf_counter()
    from scifm._progress import Display

    with Display() as display:
        bar = display.bar(f"{system} {resolution}x{resolution}", n, unit="samples")
        path = data.generate(
            pde, n, resolution, seed, out, chunk_size=chunk_size, overwrite=overwrite, progress=bar
        )
    elapsed = time.perf_counter() - start
    print(f"wrote {path}: {n} {system} samples at {resolution}x{resolution} in {elapsed:.1f} s")


@app.command()
def inspect(
    path: str = typer.Argument(
        ..., help="Dataset (scifm layout or the reference code's fields/tensor)."
    ),
    png: str = typer.Option(
        None, "--png", help="Where to write the picture [default: next to the file, .png]."
    ),
    samples: int = typer.Option(4, "--samples", help="Samples to draw."),
    json_out: str = typer.Option(None, "--json", help="Also write the summary as JSON here."),
):
    """Print a summary of a dataset and write a PNG of a few samples (source, solution, coefficients)."""
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
        f"[bold]{info['path']}[/]  {info['system']}  n={info['n']}  {info['resolution']}x{info['resolution']}  layout={info['layout']}"
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
        if key.startswith(("source", "solution")):
            s = info[key]
            table.add_row(key, *(f"{s[k]:.4g}" for k in ("min", "max", "mean", "std")))
    console.print(table)


@bench_app.command("data")
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

    counts = tuple(int(x) for x in memory_n.split(","))
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


# --- neural operators ---


@app.command()
def models():
    """List the FNO size presets with their exact parameter counts (7 input channels, 1 output)."""
    from rich.console import Console
    from rich.table import Table

    from scifm.models import PRESETS

    table = Table("preset", "width", "modes", "layers", "parameters")
    for p in PRESETS.values():
        table.add_row(p.name, str(p.width), str(p.modes), str(p.layers), f"{p.parameters():,}")
    Console().print(table)


@app.command()
def train(
    train_path: str = typer.Option(..., "--train", help="Training dataset (HDF5)."),
    val_path: str = typer.Option(..., "--val", help="Validation dataset (HDF5)."),
    out: str = typer.Option(
        ..., "--out", help="Run directory; an unfinished run there is resumed."
    ),
    model: str = typer.Option(
        None, "--model", help="FNO preset (see `scifm models`) [default: fno-1m, or --init's]."
    ),
    init: str = typer.Option(
        None, "--init", help="Start from this run's (or checkpoint's) weights and normalisation."
    ),
    epochs: int = typer.Option(20, "--epochs", help="Passes over the training set."),
    batch_size: int = typer.Option(16, "--batch-size", help="Samples per step."),
    lr: float = typer.Option(
        1e-3, "--lr", help="Peak learning rate (Adam, cosine decay over the run)."
    ),
    loss: str = typer.Option(
        "relative_l2", "--loss", help="relative_l2 or sse (summed squared error)."
    ),
    n: int = typer.Option(None, "--n", help="Use only the first N training samples."),
    seed: int = typer.Option(0, "--seed", help="Initialisation and shuffling seed."),
    finetune: str = typer.Option(
        "full",
        "--finetune",
        help="Fine-tuning strategy with --init: full, last (projection only), magnitude (largest half of each tensor fixed), l2sp (pull to the pre-trained weights), spider (importance-aware).",
    ),
    validate_every: int = typer.Option(
        1, "--validate-every", help="Validate and save every N epochs (and after the last)."
    ),
    checkpoint_every: float = typer.Option(
        600.0, "--checkpoint-every", help="Seconds between resumable saves inside an epoch."
    ),
):
    """Train an FNO on a dataset, validating every epoch; keeps the best checkpoint.

    Example: scifm train --train poisson.h5 --val poisson_val.h5 --model fno-1m --out runs/p
    """
    from scifm import data
    from scifm import train as train_lib

    strategy = train_lib.get_strategy(finetune)  # check arguments before reading data
    if init is None and finetune != "full":
        raise ValueError(f"--finetune {finetune} needs --init (the pre-trained run to start from)")
    train_fields = data.FieldSet.load(train_path, limit=n)
    val_fields = data.FieldSet.load(val_path)
    start, name = train_lib.start_model(train_fields, preset=model, init=init, seed=seed)
    metadata = {"model": {"preset": name}, "init": init}
    result = train_lib.fit(
        start,
        train_fields,
        val_fields,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        loss=loss,
        strategy=strategy,
        seed=seed,
        validate_every=validate_every,
        checkpoint_every=checkpoint_every,
        metadata=metadata,
    )
    print(
        f"best validation relative L2 {result['best_val_rel_l2']:.4g} at epoch {result['best_epoch']} "
        f"({result['train_seconds']:.1f} s); run: {out}"
    )


@app.command()
def evaluate(
    run: str = typer.Argument(..., help="Run directory (or checkpoint.eqx)."),
    data_path: str = typer.Option(..., "--data", help="Dataset to evaluate on (HDF5)."),
    json_out: str = typer.Option(
        None, "--json", help="Where to write the JSON [default: RUN/eval-<data>.json]."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Samples per evaluation batch."),
):
    """Mean per-sample relative L2 error of a trained model on a dataset, and its spread."""
    import json
    from pathlib import Path

    from scifm import data
    from scifm import train as train_lib

    model, _ = train_lib.load(run)
    fields = data.FieldSet.load(data_path)
    metrics = {"data": data_path, **train_lib.evaluate(model, fields, batch_size)}
    base = Path(run) if Path(run).is_dir() else Path(run).parent
    path = Path(json_out) if json_out else base / f"eval-{Path(data_path).stem}.json"
    path.write_text(json.dumps(metrics, indent=2))
    print(
        f"relative L2: mean {metrics['rel_l2_mean']:.4g}, std {metrics['rel_l2_std']:.4g}, "
        f"median {metrics['rel_l2_median']:.4g}, p90 {metrics['rel_l2_p90']:.4g} over {metrics['n']} samples"
    )
    print(f"wrote {path}")


@bench_app.command("finetune")
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


@bench_app.command("fno")
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

    names = tuple(PRESETS) if presets == "all" else tuple(p.strip() for p in presets.split(","))
    for name in names:
        get_preset(name)
    sizes = tuple(int(r) for r in resolutions.split(","))
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


# --- demo ---


def _print_headline(report) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from scifm import experiments

    sweep_dir = report.parent
    study = experiments.Study.from_dict(json.loads((sweep_dir / "study.json").read_text()))
    rows = experiments.read_csv(sweep_dir / "results.csv")
    for r in rows:
        r["selected"] = r["selected"] == "True"
    n_max = max(study.n_values)
    several = len(study.presets) > 1
    table = Table(
        title=f"test error at n={n_max} and the n fine-tuning needs to match scratch there"
    )
    columns = ["task", "strategy", "scratch", "tuned", "zero-shot", "n needed", "saved"]
    for column in (["preset"] if several else []) + columns:
        table.add_column(column, no_wrap=column != "task")
    fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    for h in experiments.headline(study, rows):
        needed, saved = experiments.format_saving(h)
        cells = [
            h["task"],
            h["method"].removeprefix("fine-tune (").removesuffix(")"),
            fmt(h["target"]),
            fmt(h["finetune_at_n_max"]),
            fmt(h["zero_shot"]),
            needed,
            saved,
        ]
        table.add_row(*(([h["preset"]] if several else []) + cells))
    Console().print(table)
    print(f"report:  {report}")
    print(f"table:   {sweep_dir / 'results.csv'}")
    print(f"plots:   {sweep_dir}/*.png")


@app.command()
def sweep(
    config: str = typer.Argument(
        ...,
        help="Study: a TOML file, or a shipped name (demo, paper-poisson, paper-helmholtz, "
        "paper-advdiff, paper-mixture).",
    ),
    out: str = typer.Option(
        None, "--out", help="Sweep directory [default: sweeps/<study name>]; reruns resume it."
    ),
    overrides: list[str] = typer.Option(  # noqa: B008 - typer reads it
        None,
        "--set",
        help="Override a key, e.g. --set steps=200 --set pretrain.epochs=5 (TOML values).",
    ),
    jobs: int = typer.Option(1, "--jobs", help="Points run in parallel as local processes."),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local, slurm (submitit), or submitit-local (test the SLURM path here).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the resolved study and its runs; run nothing."
    ),
):
    """Run a transfer study: data, pre-training, fine-tuning / scratch / zero-shot at every point.

    Every point is a run directory; an interrupted sweep rerun with the same study skips
    finished points. Writes results.csv, report.md and plots into the sweep directory.

    Example: scifm sweep demo --set presets='["fno-64k","fno-1m"]' --out sweeps/demo2
    """
    import json
    import time

    from scifm import experiments

    study = experiments.load_study(config, overrides or ())
    out = out or f"sweeps/{study.name}"
    if dry_run:
        first, second = experiments.plan(study)
        print(json.dumps(study.to_dict(), indent=2))
        print(
            f"{len(first)} runs without pre-training, then {len(second)} fine-tuning runs; "
            f"{sum(study.data_files().values())} samples of data; into {out}"
        )
        return
    start = time.perf_counter()
    report = experiments.sweep(study, out, executor=executor, jobs=jobs)
    print(f"sweep finished in {time.perf_counter() - start:.1f} s")
    _print_headline(report)


@app.command()
def demo(
    out: str = typer.Option("demo", "--out", help="Sweep directory for data, runs, plots, report."),
    jobs: int = typer.Option(1, "--jobs", help="Points run in parallel as local processes."),
):
    """The main job on the embedded defaults: a small transfer study, minutes on a laptop CPU.

    Pre-trains fno-64k on a Poisson + Helmholtz mixture (32x32), fine-tunes it to
    advection-diffusion and to out-of-distribution Poisson with 8..512 examples, against
    training from scratch. Same as `scifm sweep demo --out demo`; reruns resume.
    """
    import time

    from scifm import experiments

    start = time.perf_counter()
    report = experiments.run_demo(out, jobs=jobs)
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    _print_headline(report)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="scifm", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("scifm: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # usage errors: unknown command, bad option value
        print(f"scifm: error: {e.format_message()}", file=sys.stderr)
        return 2
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, OSError) as e:
        print(f"scifm: error: {e}", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
