"""`scifm federated`: federated pre-training studies, and what they can be made of."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Federated pre-training across data holders: algorithms, robust aggregation, attacks.",
    no_args_is_help=True,
)


@app.command()
def study(
    config: str = typer.Argument(
        ..., help="Federated study: a TOML file, or a shipped name (fed-demo, fed-robust, fed-fccl)."
    ),
    out: str = typer.Option(
        None, "--out", help="Study directory [default: sweeps/<study name>]; reruns resume it."
    ),
    overrides: list[str] = typer.Option(  # noqa: B008 - typer reads it
        None, "--set", help="Override a key, e.g. --set rounds=10 --set 'algorithms=[\"fedavg\"]'."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the resolved study and its runs; run nothing."
    ),
):
    """Run a federated study: every client's data, each algorithm, the centralised and
    local-only baselines, FedAvg under attack with each aggregation rule, FCCL+ with
    heterogeneous models, and the final models fine-tuned on a downstream task.

    Every run is a run directory resumed at its last round when the study is rerun. Writes
    results.csv, report.md and plots (error vs round, error per client, communication vs
    error, robustness, downstream) into the study directory.

    Example: scifm federated study fed-demo --set rounds=10 --out sweeps/fed
    """
    import json
    import time

    from scifm import federated

    spec = federated.load_study(config, overrides or ())
    out = out or f"sweeps/{spec.name}"
    runs = federated.plan(spec)
    if dry_run:
        print(json.dumps(spec.to_dict(), indent=2))
        print(f"{len(runs)} runs: {', '.join(r.name for r in runs)}; into {out}")
        return
    start = time.perf_counter()
    report = federated.run_study(spec, out)
    print(f"federated study finished in {time.perf_counter() - start:.1f} s")
    _print_summary(spec, report)


def _print_summary(spec, report) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from scifm import federated

    finished = [
        (run, json.loads((report.parent / "runs" / run.name / "result.json").read_text()))
        for run in federated.plan(spec)
    ]
    table = Table(title="mean relative L2 test error on the clients' own distributions")
    for column in ("method", "mean", "spread", "worst", "held-out", "MiB/client"):
        table.add_column(column)
    fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    for s in federated.summaries(spec, finished):
        table.add_row(
            s.method, fmt(s.mean), fmt(s.spread), fmt(s.worst), fmt(s.heldout), f"{s.mb_sent:.3g}"
        )
    Console().print(table)
    print(f"report:  {report}")
    print(f"table:   {report.parent / 'results.csv'}")
    print(f"plots:   {report.parent}/*.png")


@app.command(name="list")
def list_components():
    """List the algorithms, aggregation rules, attacks and client optimisers, with settings."""
    import dataclasses

    from scifm import federated

    for kind, registry in (
        ("algorithms", federated.ALGORITHMS),
        ("aggregators", federated.AGGREGATORS),
        ("attacks", federated.ATTACKS),
        ("optimizers", federated.CLIENT_OPTIMIZERS),
    ):
        print(f"{kind}:")
        for name, cls in registry.items():
            fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"  {name:14s} {fields or '-':40s} {doc}")
