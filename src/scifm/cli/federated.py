"""`scifm federated`: federated pre-training studies, and what they can be made of."""

from __future__ import annotations

import typer

from scifm._checks import UserError

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


def _pairs(option: str, values: list[str] | None) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict (names distinct)."""
    out: dict[str, str] = {}
    for text in values or []:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise UserError(f"{option} takes NAME=VALUE, got {text!r}")
        if name in out:
            raise UserError(f"{option} names {name!r} twice")
        out[name] = value
    return out


def _component_settings(values: list[str] | None) -> dict[str, dict]:
    """``--setting NAME.KEY=VALUE`` options as ``{NAME: {KEY: value}}`` (values are TOML)."""
    from scifm._config import parse_override

    settings: dict[str, dict] = {}
    for text in values or []:
        keys, value = parse_override(text) if "=" in text else ([], None)
        if len(keys) != 2:
            raise UserError(f"--setting takes NAME.KEY=VALUE (fedprox.mu=0.1), got {text!r}")
        settings.setdefault(keys[0], {})[keys[1]] = value
    return settings


@app.command()
def launch(
    out: str = typer.Option(..., "--out", help="Federation directory; a rerun resumes its run."),
    client: list[str] = typer.Option(  # noqa: B008 - typer reads it
        None, "--client", help="A client trained on this machine: NAME=FILE.h5 (a SuperNode each)."
    ),
    remote: list[str] = typer.Option(  # noqa: B008
        None, "--remote", help="A client on another machine, by NAME: it joins with "
        "`scifm federated node --name NAME --server HOST:PORT ...`.",
    ),
    algorithm: str = typer.Option("fedavg", help="fedavg, fedprox, scaffold, fedadam, fedavgm."),
    aggregator: str = typer.Option("mean", help="mean, median, trimmed, krum."),
    optimizer: str = typer.Option("adam", help="The clients' optimiser: adam or sgd."),
    setting: list[str] = typer.Option(  # noqa: B008
        None, "--setting", help="A component's setting, NAME.KEY=VALUE: fedprox.mu=0.1, "
        "krum.bad=1, sgd.momentum=0.9 (see `scifm federated list`).",
    ),
    preset: str = typer.Option("fno-64k", help="FNO preset of the global model."),
    rounds: int = typer.Option(20, min=1, help="Communication rounds."),
    local_steps: int = typer.Option(10, min=1, help="Optimiser steps per client and round."),
    batch_size: int = typer.Option(16, min=1, help="Samples per local step."),
    lr: float = typer.Option(1e-3, min=0.0, help="Peak learning rate (half cosine to 0)."),
    seed: int = typer.Option(0, help="Initial weights and the clients' batch orders."),
    test: list[str] = typer.Option(  # noqa: B008
        None, "--test", help="A test set the server holds, NAME=FILE.h5: the global model's "
        "error on it is logged.",
    ),
    eval_every: int = typer.Option(1, min=1, help="Evaluate every N rounds (and the last)."),
    deadline: float = typer.Option(
        600.0, min=1.0, help="Seconds a round waits for the clients' answers (the first round "
        "of a run or a resume, where clients compile, waits up to --join-timeout).",
    ),
    min_clients: int = typer.Option(
        None, min=1, help="Clients a round needs within the deadline [default: all]; fewer "
        "stop the run (rerun resumes it); more aggregate whoever answered.",
    ),
    join_timeout: float = typer.Option(
        600.0, min=1.0, help="Seconds to wait for every client to join at the start."
    ),
    host: str = typer.Option(
        "127.0.0.1", help="Address the SuperLink listens on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(None, help="SuperLink port [default: a free one]."),
    tls: str = typer.Option(
        None, "--tls", help="Folder with ca.crt, server.pem, server.key (scifm federated "
        "keys): serve over TLS.",
    ),
    node_key: list[str] = typer.Option(  # noqa: B008
        None, "--node-key", help="A local client's private key, NAME=FILE (its .pub beside it): "
        "turns node authentication on.",
    ),
    authorize: list[str] = typer.Option(  # noqa: B008
        None, "--authorize", help="A remote client's public key (OpenSSH .pub): turns node "
        "authentication on; nodes with other keys are refused.",
    ),
):
    """Train a federation on Flower's deployment engine: a SuperLink here, a SuperNode for
    every --client (separate processes, as on separate machines), and --remote clients that
    join from their own machines, each training on its own HDF5 file, which never leaves it.

    The rounds are those of the simulation (`scifm federated study`): same algorithms, rules
    and results. Every round's global model and server state are saved in OUT/server; a
    killed run resumes at its last round when rerun. A client that does not answer within
    --deadline is left out of the round (if --min-clients allows) or stops the run.

    Example: scifm federated launch --client lab-a=a.h5 --client lab-b=b.h5 --rounds 5 --out fed
    """
    from pathlib import Path

    from scifm import federated
    from scifm._progress import Display, RunBar

    nodes = {name: Path(path) for name, path in _pairs("--client", client).items()}
    names = list(nodes) + [n for n in remote or [] if n not in nodes]
    if not names:
        raise UserError("give the clients: --client NAME=FILE or --remote NAME")
    settings = _component_settings(setting)
    keys = {name: Path(path) for name, path in _pairs("--node-key", node_key).items()}
    unknown = sorted(set(keys) - set(nodes))
    if unknown:
        raise UserError(f"--node-key {unknown[0]}: not a --client of this machine")
    certificates = None
    if tls:
        folder = Path(tls)
        certificates = federated.TLS(folder / "ca.crt", folder / "server.pem", folder / "server.key")
        for path in (certificates.ca, certificates.certificate, certificates.key):
            if not path.is_file():
                raise UserError(f"--tls {tls}: no {path.name} (make them: scifm federated keys)")
    result = federated.run_federation(
        names, out, nodes=nodes, node_keys=keys,
        public_keys=[Path(f"{k}.pub") for k in keys.values()] + [Path(p) for p in authorize or []],
        host=host, port=port, tls=certificates,
        progress=RunBar(Display(), "federated rounds", owns_display=True),
        preset=preset, algorithm=federated.component("algorithm", algorithm, settings),
        aggregator=federated.component("aggregator", aggregator, settings),
        optimizer=federated.component("optimizer", optimizer, settings),
        rounds=rounds, local_steps=local_steps, batch_size=batch_size, lr=lr, seed=seed,
        evaluate={n: Path(p) for n, p in _pairs("--test", test).items()},
        eval_every=eval_every, deadline=deadline, join_timeout=join_timeout,
        min_clients=min_clients,
    )  # fmt: skip
    mib = result["bytes_sent_per_client"] / 2**20
    print(f"{result['rounds']} rounds in {result['seconds']:.1f} s; {mib:.3g} MiB sent per client")
    for name, error in result["test"].items():
        print(f"test {name}: relative L2 error {error:.4g}")
    print(f"model:   {Path(out) / 'server'} (scifm evaluate / scifm train --init)")
    print(f"logs:    {Path(out) / 'flower'}")


@app.command()
def node(
    name: str = typer.Option(..., "--name", help="This client's name, as the server lists it."),
    data: str = typer.Option(..., "--data", help="This client's training data (HDF5)."),
    server: str = typer.Option(..., "--server", help="The SuperLink, HOST:PORT."),
    state: str = typer.Option(
        ..., "--state", help="Folder for this client's state (optimiser after each round) and logs."
    ),
    ca: str = typer.Option(None, "--ca", help="The federation's ca.crt: connect over TLS."),
    key: str = typer.Option(
        None, "--key", help="This node's private key (OpenSSH; the server registers its .pub)."
    ),
):
    """Join a federation from this machine: a Flower SuperNode that trains on --data when the
    server asks, and keeps its state in --state. The data never leaves this machine; each
    round sends only the model update. Runs until stopped (Ctrl-C).

    Example: scifm federated node --name lab-a --data a.h5 --server 10.0.0.5:9092 --state lab-a
    """
    import time
    from pathlib import Path

    from scifm import data as scifm_data
    from scifm import federated

    folder = Path(state)
    scifm_data.FieldSet.load(data, limit=1)  # refuse a missing or malformed file now
    for option, path in (("--ca", ca), ("--key", key)):
        if path and not Path(path).is_file():
            raise UserError(f"{option}: no such file {path}")
    process = federated.start_supernode(
        folder / "flower", name, Path(data).resolve(), folder.resolve(), server,
        ca=Path(ca) if ca else None, private_key=Path(key) if key else None, retries=None,
    )  # fmt: skip
    log = folder / "flower" / f"node-{name}.log"
    print(f"SuperNode {name} started for {server}; log: {log}; Ctrl-C stops it")
    try:
        while process.poll() is None:
            time.sleep(1)
    finally:
        federated.stop_processes([process])
    if process.returncode not in (0, -15):
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        refused = next((line for line in lines if "Failed" in line), lines[-1] if lines else "")
        raise UserError(f"the SuperNode stopped: {refused.strip()} (log: {log})")


@app.command()
def keys(
    out: str = typer.Option(..., "--out", help="Folder for the certificates and keys."),
    host: list[str] = typer.Option(  # noqa: B008
        ..., "--host", help="A name or address the nodes dial to reach the server (repeatable)."
    ),
    node_name: list[str] = typer.Option(  # noqa: B008
        None, "--node", help="Make an authentication key pair for this client (repeatable)."
    ),
    days: int = typer.Option(365, min=1, help="Validity of the certificates."),
):
    """Make what a secure federation needs: a CA and the server's TLS certificate
    (ca.crt for every node; server.pem and server.key stay on the server) and, for each --node,
    a key pair (NAME.key stays on that node; NAME.key.pub goes to the server, --authorize).

    Example: scifm federated keys --out secrets --host fed.example.org --node lab-a --node lab-b
    """
    from pathlib import Path

    from scifm import federated

    folder = Path(out)
    tls = federated.make_certificates(folder, list(host), days=days)
    print(f"TLS: {tls.ca} (nodes: --ca), {tls.certificate} and {tls.key} (server: --tls {folder})")
    for name in node_name or []:
        private = federated.make_node_key(folder / f"{name}.key")
        print(f"{name}: {private} (node: --key), {private}.pub (server: --authorize)")
