"""`scifm sweep` and `scifm demo`: transfer studies, and the headline table they print."""

from __future__ import annotations

import typer


def _print_headline(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from scifm import experiments

    sweep_dir = report.parent
    study = experiments.load_study(sweep_dir / "study.json")
    rows = experiments.read_results(sweep_dir / "results.csv")
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
        needed, saved = h.saving.text()
        cells = [
            h.task,
            h.method.strategy,
            fmt(h.saving.target),
            fmt(h.saving.finetune_at_n_max),
            fmt(h.zero_shot),
            needed,
            saved,
        ]
        table.add_row(*(([h.preset] if several else []) + cells))
    Console().print(table)
    print(f"report:  {report}")
    print(f"table:   {sweep_dir / 'results.csv'}")
    print(f"plots:   {sweep_dir}/*.png")


def sweep(
    config: str = typer.Argument(
        ...,
        help="Study: a TOML file, or a shipped name (demo, darcy, paper-poisson, "
        "paper-helmholtz, paper-advdiff, paper-mixture).",
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
