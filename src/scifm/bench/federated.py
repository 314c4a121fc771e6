"""`scifm bench federated`: one federated round, all clients in one compiled call against the
same clients stepped one after another, side by side.

scifm's round is :func:`scifm.federated.federated_round` with K clients (local training of
every client, then aggregation and the server step), timed both ways it can run the clients:
batched (``jax.vmap``) and one after another inside the compiled call (``jax.lax.map``, the
default on the CPU). The peer is the execution model of the MarsFL benchmark code, which runs
its clients in turn in one process: here the one-client round called K times (its local
training is the same compiled scan). Both run on
the same random batches (timing does not depend on the data), alternating, medians of
``rounds`` timed rounds after one compiling call. Flower's per-round overhead on loopback is
not measured yet (the Flower runner is not built).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm import federated
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
