"""`scifm bench federated`: one federated round, all clients in one compiled call against the
same clients stepped one after another, side by side.

scifm's round is :func:`scifm.federated.federated_round` with K clients (local training of
every client, then aggregation and the server step), timed both ways it can run the clients:
batched (``jax.vmap``) and one after another inside the compiled call (``jax.lax.map``, the
default on the CPU). The peer is the execution model of the MarsFL benchmark code, which runs
its clients in turn in one process: here the one-client round called K times (its local
training is the same compiled scan). Both run on
the same random batches (timing does not depend on the data), alternating, medians of
``rounds`` timed rounds after one compiling call.

:func:`bench_flower` runs one small federation twice in the same process: on Flower's
deployment engine (SuperLink, one SuperNode per client on loopback: :func:`scifm.federated.launch`)
and in the in-process simulation, same clients and settings, and reports each one's seconds per
round after the first (which compiles) and the ratio: Flower's overhead per round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm import federated
from scifm._io import read_jsonl
from scifm.bench._measure import machine
from scifm.bench._report import Table, count, ms, ratio
from scifm.models import Normalizer, OperatorModel, count_parameters, get_preset
from scifm.train import relative_l2


def _setup(preset: str, k: int, resolution: int, local_steps: int, batch: int, seed: int = 0):
    net = get_preset(preset).build(7, 1, key=jax.random.key(seed))
    model = OperatorModel(Normalizer(1.0, np.ones(6)), net)
    rng = np.random.default_rng(seed)
    shape = (k, local_steps, batch)
    f = rng.normal(size=(*shape, 1, resolution, resolution)).astype(np.float32)
    c = rng.uniform(0.01, 0.1, size=(*shape, 6)).astype(np.float32)
    u = rng.normal(size=(*shape, 1, resolution, resolution)).astype(np.float32)
    return model, (f, c, u)


def _round(model, batches, k: int, lrs, vectorize: bool = False):
    algorithm, optimizer = federated.FedAvg(), federated.Adam()
    clients, server = federated.init_clients(algorithm, optimizer, model.net, k)
    args = (federated.Mean(), federated.NoAttack(), optimizer, relative_l2)

    def call():
        out = federated.federated_round(
            algorithm, *args, model, server, clients, batches, lrs,
            jnp.ones(k), jnp.zeros(k, bool), jax.random.key(0), vectorize,
        )  # fmt: skip
        jax.block_until_ready(out)

    return call


def bench_federated(
    presets: Sequence[str],
    client_counts: Sequence[int],
    *,
    resolution: int = 32,
    local_steps: int = 10,
    batch: int = 16,
    rounds: int = 3,
    report: Callable[[dict], None] = lambda row: None,
) -> dict:
    """Median seconds per round, vmapped and sequential, per preset and client count."""
    rows = []
    lrs = np.full(local_steps, 1e-3, np.float32)
    for preset in presets:
        for k in client_counts:
            model, batches = _setup(preset, k, resolution, local_steps, batch)
            together = _round(model, batches, k, lrs, vectorize=True)
            mapped = _round(model, batches, k, lrs, vectorize=False)
            singles = [
                _round(model, tuple(x[i : i + 1] for x in batches), 1, lrs) for i in range(k)
            ]

            def in_turn(singles=singles):
                for call in singles:
                    call()

            calls = {"vmapped": together, "mapped": mapped, "in_turn": in_turn}
            first = {}
            for name, call in calls.items():
                tic = time.perf_counter()
                call()
                first[name] = time.perf_counter() - tic
            times = {name: [] for name in calls}
            for _ in range(rounds):  # alternating
                for name, call in calls.items():
                    tic = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - tic)
            row = {
                "preset": preset,
                "parameters": count_parameters(model.net),
                "clients": k,
                "local_steps": local_steps,
                "batch": batch,
                "resolution": resolution,
                **{f"{name}_s": float(np.median(t)) for name, t in times.items()},
                **{f"first_call_{name}_s": t for name, t in first.items()},
                "times": times,
            }
            row["speedup"] = row["in_turn_s"] / row["mapped_s"]  # the CPU default against the peer
            row["speedup_vmapped"] = row["in_turn_s"] / row["vmapped_s"]
            rows.append(row)
            report(row)
            del model, batches, together, mapped, singles, calls
            eqx.clear_caches()
    return {
        "benchmark": "federated",
        "machine": {**machine(), "jax": jax.__version__, "backend": jax.default_backend()},
        "rows": rows,
    }


def bench_flower(
    preset: str = "fno-64k",
    clients: int = 2,
    *,
    resolution: int = 32,
    samples: int = 32,
    local_steps: int = 10,
    batch: int = 16,
    rounds: int = 4,
    workdir: str | None = None,
) -> dict:
    """Seconds per round (median over rounds 2..R) of the same FedAvg federation on Flower's
    deployment engine on loopback and in the in-process simulation, with their ratio."""
    import tempfile
    from pathlib import Path

    from scifm import data, pdes

    with tempfile.TemporaryDirectory(dir=workdir, prefix="scifm-bench-flower-") as tmp:
        root = Path(tmp)
        files = {
            f"client-{i}": data.generate(pdes.Poisson(), samples, resolution, 100 + i, root / f"c{i}.h5")
            for i in range(clients)
        }
        settings = dict(
            preset=preset, algorithm=federated.FedAvg(), aggregator=federated.Mean(),
            optimizer=federated.Adam(), rounds=rounds, local_steps=local_steps,
            batch_size=batch, lr=1e-3, seed=0, evaluate={}, eval_every=rounds,
            deadline=600.0, join_timeout=300.0, min_clients=None,
        )  # fmt: skip
        tic = time.perf_counter()
        federated.launch(files, root / "flower", **settings)
        flower_total = time.perf_counter() - tic
        fields = [data.FieldSet.load(p) for p in files.values()]
        model = federated.initial_model(fields, preset=preset)
        tic = time.perf_counter()
        federated.simulate(
            model, fields, root / "sim", names=list(files), rounds=rounds,
            local_steps=local_steps, batch_size=batch, lr=1e-3, eval_every=rounds,
        )  # fmt: skip
        simulation_total = time.perf_counter() - tic

        def per_round(run):
            seconds = [row["seconds"] for row in read_jsonl(run / "metrics.jsonl")]
            return float(np.median(np.diff(seconds))) if len(seconds) > 1 else float("nan")

        row = {
            "preset": preset,
            "parameters": count_parameters(model.net),
            "clients": clients,
            "local_steps": local_steps,
            "batch": batch,
            "resolution": resolution,
            "rounds": rounds,
            "flower_s": per_round(root / "flower" / "server"),
            "simulation_s": per_round(root / "sim"),
            "flower_total_s": flower_total,
            "simulation_total_s": simulation_total,
        }
    row["overhead"] = row["flower_s"] / row["simulation_s"]
    return row


def flower_table(row: dict) -> Table:
    columns = (
        "preset", "clients", "s/round Flower", "s/round in-process", "Flower / in-process",
        "whole run Flower", "whole run in-process",
    )  # fmt: skip
    return Table(
        columns,
        [
            (
                row["preset"],
                str(row["clients"]),
                f"{row['flower_s']:.2f}",
                f"{row['simulation_s']:.3f}",
                ratio(row["overhead"]),
                f"{row['flower_total_s']:.1f} s",
                f"{row['simulation_total_s']:.1f} s",
            )
        ],
        title=f"one FedAvg round on Flower's deployment engine (loopback) and in process: "
        f"{row['local_steps']} local steps, batch {row['batch']}, median of rounds 2..{row['rounds']}",
    )


def federated_table(rows: Sequence[dict]) -> Table:
    columns = (
        "preset", "parameters", "clients", "ms/round lax.map", "ms/round vmap",
        "ms/round in turn (peer)", "ms per client step", "speed-up map", "speed-up vmap",
    )  # fmt: skip
    return Table(
        columns,
        [
            (
                r["preset"],
                count(r["parameters"]),
                str(r["clients"]),
                ms(r["mapped_s"]),
                ms(r["vmapped_s"]),
                ms(r["in_turn_s"]),
                ms(r["mapped_s"] / (r["clients"] * r["local_steps"])),
                ratio(r["speedup"]),
                ratio(r["speedup_vmapped"]),
            )
            for r in rows
        ],
        title=f"one FedAvg round: {rows[0]['local_steps'] if rows else '-'} local Adam steps per "
        "client, batch 16; speed-up = peer (clients in turn) / scifm",
    )
