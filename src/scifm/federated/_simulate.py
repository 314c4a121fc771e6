"""The in-process federation: K clients of one architecture stepped together, round by round.

One round is one compiled call: the clients' local training (a ``jax.lax.scan`` over their E
local steps) for every client, by ``jax.lax.map`` on the CPU and ``jax.vmap`` elsewhere
(:func:`default_vectorize`), followed by the attack (if any), the aggregation and the server
step. It is deterministic: batches come from each client's own seeded stream
(:func:`scifm.data.epoch_batches` by ``(seed_k, epoch)``, continued across rounds), the
learning rate from the cosine schedule over all ``rounds * E`` steps, the attack's noise from
``(seed, round)``. The run directory (:mod:`scifm._runs`) holds the global model, the server
state and every client's state after each round; a killed run resumes at its last round and
ends with the same files as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scifm._checks import UserError, check_count, check_positive
from scifm._progress import NoProgress, RunProgress
from scifm._runs import DivergenceError, RunDirectory
from scifm.data import FieldSet, epoch_batches
from scifm.federated._aggregate import AbstractAggregator, Mean, flatten_clients
from scifm.federated._algorithms import AbstractAlgorithm, FedAvg, tree_sub, tree_zeros
from scifm.federated._attacks import AbstractAttack, NoAttack, attack_updates
from scifm.federated._clients import check_clients
from scifm.models import Normalizer, OperatorModel, count_parameters, get_preset
from scifm.train import cosine_lr, errors, hyperparameters, make_optimizer, relative_l2


class Adam(eqx.Module):
    """Clients train with Adam (scifm's training optimiser)."""

    name: ClassVar[str] = "adam"

    def transformation(self) -> optax.GradientTransformation:
        return make_optimizer()


class SGD(eqx.Module):
    """Clients train with SGD, with heavy-ball ``momentum`` (0: plain SGD, as SCAFFOLD's
    analysis assumes)."""

    momentum: float = 0.0
    name: ClassVar[str] = "sgd"

    def __check_init__(self):
        if not 0 <= self.momentum < 1:
            raise UserError(f"sgd momentum must be in [0, 1), got {self.momentum!r}")

    def transformation(self) -> optax.GradientTransformation:
        base = optax.trace(self.momentum) if self.momentum else optax.identity()
        return make_optimizer(base=base)


CLIENT_OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def describe(obj: eqx.Module) -> dict:
    """An algorithm, rule, attack or optimiser as JSON: its name and its settings."""
    return {"name": obj.name, **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}


def _stacked(tree, k: int):
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (k, *jnp.shape(x))), tree)


def init_client(algorithm, optimizer, net):
    """One client's state before its first round: its optimiser's and the algorithm's."""
    params = eqx.filter(net, eqx.is_inexact_array)
    return optimizer.transformation().init(params), algorithm.init_client(params)


@eqx.filter_jit
def init_clients(algorithm, optimizer, net, k: int):
    params = eqx.filter(net, eqx.is_inexact_array)
    return _stacked(init_client(algorithm, optimizer, net), k), algorithm.init_server(params)


def local_update(algorithm, optimizer, loss_fn, model, server, client, f, c, u, lrs):
    """One client's round: E optimiser steps (a ``jax.lax.scan``) on its batches ``(f, c, u)``
    (leading axes ``(E, B)``) from the global ``model``, at learning rates ``lrs``.

    Returns ``(delta, client, loss)``: its update ``y_k - x``, its state after the round and its
    mean training loss. The simulation maps it over the clients inside one compiled round
    (:func:`federated_round`); each Flower client runs it alone (:func:`client_round`).
    """
    params, static = eqx.partition(model.net, eqx.is_inexact_array)
    tx = optimizer.transformation()
    opt_state, extra = client

    def step(carry, xs):
        p, o, acc = carry
        fb, cb, ub, lr = xs

        def objective(p):
            m = eqx.tree_at(lambda m: m.net, model, eqx.combine(p, static))
            data_loss = loss_fn(jax.vmap(m)(fb, cb), ub)
            return data_loss + algorithm.penalty(p, params), data_loss

        (_, data_loss), g = jax.value_and_grad(objective, has_aux=True)(p)
        if algorithm.tracks_gradients:
            acc = jax.tree.map(lambda a, x: a + lr * x, acc, g)
        g = algorithm.correct(g, extra, server)
        updates, o = tx.update(g, o, p, learning_rate=lr)
        return (optax.apply_updates(p, updates), o, acc), data_loss

    acc = tree_zeros(params) if algorithm.tracks_gradients else None
    (p, opt_state, acc), losses = jax.lax.scan(step, (params, opt_state, acc), (f, c, u, lrs))
    delta = tree_sub(p, params)
    mean_gradient = (
        jax.tree.map(lambda a: a / jnp.sum(lrs), acc) if algorithm.tracks_gradients else None
    )
    extra_after = algorithm.after_local(extra, server, delta, mean_gradient)
    return delta, (opt_state, extra_after), jnp.mean(losses)


client_round = eqx.filter_jit(local_update)


def server_update(algorithm, aggregator, model, server, deltas, weights, before, after):
    """The server's half of a round: the aggregation rule over the clients' updates ``deltas``
    (stacked, leading axis K) and the algorithm's server step (``before``/``after``: the
    clients' algorithm states, stacked). Returns the new global model and server state."""
    params, static = eqx.partition(model.net, eqx.is_inexact_array)
    rows, unflatten = flatten_clients(deltas)
    update = unflatten(aggregator(rows, weights.astype(rows.dtype)))
    params, server = algorithm.server_step(params, update, server, before, after)
    return eqx.tree_at(lambda m: m.net, model, eqx.combine(params, static)), server


server_round = eqx.filter_jit(server_update)


@eqx.filter_jit
def federated_round(
    algorithm: AbstractAlgorithm,
    aggregator: AbstractAggregator,
    attack: AbstractAttack,
    optimizer,
    loss_fn: Callable,
    model: OperatorModel,
    server,
    clients,
    batches,
    lrs,
    weights,
    bad,
    key,
    vectorize: bool = False,
):
    """One round: local training of every client, attack, aggregation, server step.

    Args:
        vectorize: the clients' local training as one batched computation (``jax.vmap``:
            wide devices, the GPU) or one client after another inside the same compiled call
            (``jax.lax.map``: faster on the CPU, where batching K clients' distinct weights
            turns every matrix product into a batched one; BENCHMARKS.md).
        batches: ``(f, c, u)`` with leading axes ``(K, E, B)``.
        lrs: the E local steps' learning rates.
        weights: the clients' aggregation weights (their example counts).
        bad: one boolean per client: whose update the attack replaces.

    Returns:
        ``(model, server, clients, losses)``: the new global model, server and client states,
        and each client's mean training loss over its local steps.
    """

    def local(client, f, c, u):
        return local_update(algorithm, optimizer, loss_fn, model, server, client, f, c, u, lrs)

    if vectorize:
        deltas, after, losses = jax.vmap(local)(clients, *batches)
    else:
        deltas, after, losses = jax.lax.map(lambda args: local(*args), (clients, *batches))
    deltas = attack_updates(attack, deltas, bad, key)
    model, server = server_update(
        algorithm, aggregator, model, server, deltas, weights, clients[1], after[1]
    )
    return model, server, after, losses


def default_vectorize() -> bool:
    """Batch the clients (``jax.vmap``) on accelerators; on the CPU step them one after another
    inside the round's compiled call (``jax.lax.map``): on the 2-core CPU the batched round was
    0.81-0.97x the speed of clients in turn, the mapped one 0.96-1.04x (BENCHMARKS.md)."""
    return jax.default_backend() != "cpu"


def client_batches(n: int, batch_size: int, seed: int, first: int, count: int) -> np.ndarray:
    """Sample indices of a client's steps ``first .. first + count - 1`` (count, batch): its
    epochs of :func:`scifm.data.epoch_batches` taken one after another, as ``fit`` does."""
    per_epoch = n // batch_size
    out = []
    for s in range(first, first + count):
        epoch, k = divmod(s, per_epoch)
        out.append(epoch_batches(n, batch_size, seed, epoch + 1)[k])
    return np.stack(out)


def client_steps(data: FieldSet, batch_size: int, seed: int, r: int, local_steps: int):
    """A client's batches ``(f, c, u)`` for round ``r`` (leading axes ``(E, B)``)."""
    index = client_batches(len(data), batch_size, seed, (r - 1) * local_steps, local_steps)
    return tuple(
        x.reshape(local_steps, batch_size, *x.shape[1:]) for x in data.take(index.reshape(-1))
    )


def round_lrs(lr: float, rounds: int, local_steps: int, r: int) -> np.ndarray:
    """The learning rates of round ``r``'s local steps: the half cosine from ``lr`` to 0 over
    all ``rounds * local_steps`` steps."""
    first, total = (r - 1) * local_steps, rounds * local_steps
    return np.asarray([cosine_lr(lr, total, first + e) for e in range(local_steps)], np.float32)


def message_bytes(algorithm: AbstractAlgorithm, net) -> int:
    """Bytes a client sends (and receives) per round: the trainable weights in their dtype,
    times the model-sized messages of the algorithm (2 for SCAFFOLD)."""
    leaves = jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
    return algorithm.messages * sum(int(x.size) * x.dtype.itemsize for x in leaves)


def _check(model, clients, names, batch_size, aggregator, bad, evaluate) -> None:
    if not clients:
        raise UserError("a federation needs at least one client")
    if len(names) != len(clients) or len(set(names)) != len(names):
        raise UserError(f"give one distinct name per client, got {list(names)}")
    for name, data in zip(names, clients, strict=True):
        model.check_channels(data.input_names, data.output_names, f"client {name}")
    check_clients(
        {n: (tuple(d.inputs.shape[1:]), tuple(d.outputs.shape[1:])) for n, d in zip(names, clients, strict=True)},
        {n: len(d) for n, d in zip(names, clients, strict=True)}, batch_size,
        show=lambda s: f"fields {s[0]} -> {s[1]}",
    )  # fmt: skip
    for i in bad:
        if not 0 <= i < len(clients):
            raise UserError(f"bad client index {i} is not one of the {len(clients)} clients")
    aggregator.check(len(clients), len(set(bad)))
    for name, data in evaluate.items():
        model.check_channels(data.input_names, data.output_names, f"evaluation set {name}")


def simulate(
    model: OperatorModel,
    clients: Sequence[FieldSet],
    out: str | Path,
    *,
    names: Sequence[str] | None = None,
    algorithm: AbstractAlgorithm = FedAvg(),
    aggregator: AbstractAggregator = Mean(),
    attack: AbstractAttack = NoAttack(),
    bad: Sequence[int] = (),
    rounds: int = 20,
    local_steps: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    optimizer: Adam | SGD = Adam(),
    loss: Callable = relative_l2,
    seed: int = 0,
    shuffle_seeds: Sequence[int] | None = None,
    evaluate: Mapping[str, FieldSet] | None = None,
    eval_every: int = 1,
    eval_batch_size: int = 32,
    metadata: dict[str, Any] | None = None,
    progress: RunProgress = NoProgress(),
) -> dict:
    """Federated training of ``model`` over ``clients``; see the module docstring.

    Args:
        model: the initial global model (its normaliser stays fixed: see
            :func:`scifm.federated.federated_normalizer`).
        clients: each client's training samples (same channels and grid).
        out: run directory; an unfinished run of the same configuration there is resumed.
        names: the clients' names (default ``client-0``, ...).
        algorithm, aggregator: the federated algorithm and the server's aggregation rule.
        attack, bad: what the clients at indices ``bad`` do instead of honest training.
        rounds, local_steps: R rounds of E local optimiser steps per client, each on a batch
            of ``batch_size`` of the client's samples; the learning rate follows a half cosine
            from ``lr`` to 0 over the R E steps.
        optimizer: the clients' optimiser (:class:`Adam` or :class:`SGD`).
        seed: the attack's randomness; the clients' batch orders use ``shuffle_seeds``
            (default ``seed + k`` for client k).
        evaluate: named test sets; the global model's relative L2 error on each is logged every
            ``eval_every`` rounds (and after the last).

    Returns:
        The contents of result.json: the final errors per test set, bytes sent and received
        per client, time.

    Raises:
        ValueError: bad arguments (clients of other channels or grids, fewer samples than a
            batch, more bad clients than the aggregation rule withstands, ...); a
            :class:`scifm.RunConflict` when ``out`` holds something else.
        DivergenceError: a client's loss became NaN or Inf.
    """
    evaluate = dict(evaluate or {})
    names = list(names or [f"client-{k}" for k in range(len(clients))])
    bad = sorted(set(int(i) for i in bad))
    for key, value in (("rounds", rounds), ("local_steps", local_steps)):
        check_count(key, value)
    for key, value in (("batch_size", batch_size), ("eval_every", eval_every)):
        check_count(key, value)
    check_positive("lr", lr)
    _check(model, clients, names, batch_size, aggregator, bad, evaluate)
    k = len(clients)
    shuffle_seeds = list(shuffle_seeds or [seed + i for i in range(k)])
    if len(shuffle_seeds) != k:
        raise UserError(f"give one shuffle seed per client ({k}), got {len(shuffle_seeds)}")
    clients = [
        attack.poison(data, seed + i) if i in bad else data for i, data in enumerate(clients)
    ]
    hyper = hyperparameters(model, **(metadata or {}).get("model", {}))
    config = {
        "algorithm": describe(algorithm),
        "aggregator": describe(aggregator),
        "attack": describe(attack),
        "optimizer": describe(optimizer),
        "bad": [names[i] for i in bad],
        "rounds": rounds,
        "local_steps": local_steps,
        "batch_size": batch_size,
        "lr": lr,
        "loss": getattr(loss, "__name__", repr(loss)),
        "seed": seed,
        "shuffle_seeds": shuffle_seeds,
        "clients": {
            name: {"data": d.name, "n": len(d)} for name, d in zip(names, clients, strict=True)
        },
        "evaluate": {name: {"data": d.name, "n": len(d)} for name, d in evaluate.items()},
        "eval_every": eval_every,
        "parameters": count_parameters(model.net),
        "model": {key: v for key, v in hyper.items() if key != "scifm_version"},
        **{key: v for key, v in (metadata or {}).items() if key != "model"},
    }
    run = RunDirectory.open(out, config)
    client_state, server = init_clients(algorithm, optimizer, model.net, k)
    state = {"round": 0, "seconds": 0.0}
    saved = run.load_state((model, server, client_state))
    if saved is not None:
        (model, server, client_state), state = saved
    run.keep_metrics(lambda row: row["round"] <= state["round"])
    weights = jnp.asarray([len(d) for d in clients], jnp.float32)
    bad_mask = jnp.asarray([i in bad for i in range(k)])
    sent = message_bytes(algorithm, model.net)
    vectorize = default_vectorize()
    progress.start(rounds, state["round"])
    try:
        for r in range(state["round"] + 1, rounds + 1):
            tic = time.perf_counter()
            parts = [
                client_steps(d, batch_size, s, r, local_steps)
                for d, s in zip(clients, shuffle_seeds, strict=True)
            ]
            batches = tuple(np.stack(x) for x in zip(*parts, strict=True))
            lrs = round_lrs(lr, rounds, local_steps, r)
            key = jax.random.fold_in(jax.random.key(seed), r)
            model, server, client_state, losses = federated_round(
                algorithm, aggregator, attack, optimizer, loss, model, server, client_state,
                batches, lrs, weights, bad_mask, key, vectorize,
            )  # fmt: skip
            record_round(
                run, r, (model, server, client_state), model, state,
                dict(zip(names, np.asarray(losses, np.float64).tolist(), strict=True)),
                tic=tic, lr=lr, rounds=rounds, local_steps=local_steps, sent=r * sent,
                received=r * sent, evaluate=evaluate, eval_every=eval_every,
                eval_batch_size=eval_batch_size, progress=progress,
                samples=k * local_steps * batch_size,
            )  # fmt: skip
    finally:
        progress.close()
    return finish_run(run, model, hyper, state, rounds * sent, rounds * sent)


def record_round(
    run: RunDirectory,
    r: int,
    tree,
    model: OperatorModel,
    state: dict,
    losses: Mapping[str, float],
    *,
    tic: float,
    lr: float,
    rounds: int,
    local_steps: int,
    sent: int,
    received: int,
    evaluate: Mapping[str, FieldSet],
    eval_every: int,
    eval_batch_size: int,
    progress: RunProgress,
    samples: int,
) -> None:
    """Round ``r`` of either runner is over: refuse a diverged client, evaluate the global
    ``model`` when due, log the metrics row (``sent``/``received``: bytes per client so far),
    save ``tree`` and the counters ``state``, advance the progress display.

    Raises:
        DivergenceError: a client's training loss is NaN or Inf.
    """
    for name, value in losses.items():
        if not np.isfinite(value):
            raise DivergenceError(
                f"client {name}'s training loss became {value} in round {r}: lower the "
                f"learning rate (now {lr:g}) or check its data"
            )
    row = {
        "round": r,
        "step": r * local_steps,
        "train_loss": dict(losses),
        "bytes_sent": sent,
        "bytes_received": received,
    }
    if evaluate and (r % eval_every == 0 or r == rounds):
        row["test"] = {
            name: float(np.mean(errors(model, data, eval_batch_size)))
            for name, data in evaluate.items()
        }
    state["seconds"] += time.perf_counter() - tic
    row["seconds"] = state["seconds"]
    run.log(row)
    state["round"] = r
    run.save_state(tree, state, step=r)
    progress.step(float(np.mean(list(losses.values()))), samples)
    if "test" in row:
        progress.evaluated("test", float(np.mean(list(row["test"].values()))), f"round {r}")


def finish_run(
    run: RunDirectory, model: OperatorModel, hyper: dict, state: dict, sent: int, received: int
) -> dict:
    """Save the final global model and write result.json (the last round's errors and
    losses, bytes per client, time)."""
    run.save_model(model, hyper)
    last = run.metrics()[-1]
    return run.write_result(
        {
            "rounds": state["round"],
            "test": last.get("test", {}),
            "train_loss": last["train_loss"],
            "bytes_sent_per_client": sent,
            "bytes_received_per_client": received,
            "seconds": state["seconds"],
            "parameters": count_parameters(model.net),
        }
    )


def federated_normalizer(clients: Sequence[FieldSet]) -> Normalizer:
    """The global model's input normaliser from the clients' own (a few numbers each: the
    median scales of their sources and coefficients, never their data): the median over
    clients of each scale, ignoring clients that lack a term. One client gives exactly
    :meth:`scifm.models.Normalizer.fit` of its data."""
    return combine_normalizers([Normalizer.fit(d) for d in clients])


def combine_normalizers(fitted: Sequence[Normalizer]) -> Normalizer:
    """:func:`federated_normalizer` from the clients' fitted normalisers (what a Flower client
    sends the server when it joins)."""

    def median(values):
        with warnings.catch_warnings():  # a term no client has stays NaN ("not seen")
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(np.stack([np.asarray(v, np.float64) for v in values]), axis=0)

    field = None if fitted[0].field_scale is None else median([n.field_scale for n in fitted])
    return Normalizer(
        median([n.source_scale for n in fitted]),
        median([n.coefficient_scale for n in fitted]),
        field,
        source=fitted[0].source,
    )


def initial_model(
    clients: Sequence[FieldSet], *, preset: str = "fno-64k", seed: int = 0
) -> OperatorModel:
    """A fresh ``preset`` FNO for the clients' channels, initialised from ``seed``, with the
    :func:`federated_normalizer` of the clients."""
    first = clients[0]
    return fresh_model(
        preset, seed, first.input_names, first.output_names, federated_normalizer(clients)
    )


def fresh_model(preset, seed, input_names, output_names, normalizer) -> OperatorModel:
    """A ``preset`` FNO initialised from ``seed`` for these channels (and the six
    coefficients) with ``normalizer``."""
    net = get_preset(preset).build(
        len(input_names) + int(np.shape(normalizer.coefficient_scale)[0]),
        len(output_names),
        key=jax.random.key(seed),
    )
    return OperatorModel(normalizer, net, tuple(input_names), tuple(output_names))
