"""The Flower deployment engine's ServerApp and ClientApp for scifm's federated training.

The app (``scifm/federated/app/pyproject.toml``) names :data:`server_app` and
:data:`client_app`. Each lab runs a SuperNode whose node config names its client (``name``),
its HDF5 file (``data``) and a folder for its own state (``state``); its data never leaves
it. The server (a ServerApp under the SuperLink) reads a plan (JSON: the federation's settings
and its run directory) and, each round, sends every client the global model and the round's
settings, and aggregates what they return. Both halves call the functions of the in-process
simulation (:func:`~scifm.federated._simulate.local_update` on each client,
:func:`~scifm.federated._simulate.server_update` on the server), so a deployed run and a
simulated one with the same settings reach the same global model (to float tolerance).

Messages (NumPy arrays, complex weights as they are):
- ``query``: the server asks a node which client it is; the reply holds its name, sample
  count, channels, grid and its fitted normaliser (a few scales, never data).
- ``train``: model weights (``model``), the server state when the algorithm's clients read it
  (SCAFFOLD's control variate), settings (``config``); the reply holds the update ``y_k - x``
  (``delta``), the change of the client's algorithm state (``extra``) and its loss.

A client keeps its optimiser and algorithm state after every round in ``STATE/RUN/``
(``RUN``: the plan's hash), so a server that resumes a killed run, or a node that missed a
round, carries on from the client's last state.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from scifm._checks import UserError
from scifm._io import atomic_write_bytes, atomic_write_json
from scifm._progress import NoProgress
from scifm._runs import DivergenceError, RunDirectory
from scifm.data import FieldSet
from scifm.federated._aggregate import AGGREGATORS
from scifm.federated._algorithms import ALGORITHMS
from scifm.federated._clients import check_clients, show_layout
from scifm.federated._deploy import ERROR_FILE
from scifm.federated._simulate import (
    CLIENT_OPTIMIZERS,
    client_round,
    client_steps,
    combine_normalizers,
    finish_run,
    fresh_model,
    init_client,
    record_round,
    round_lrs,
    server_round,
)
from scifm.models import Normalizer
from scifm.train import hyperparameters, relative_l2, skeleton

server_app = ServerApp()
client_app = ClientApp()

# the error code of a client's refusal (bad data, missing state): the server stops with it
REFUSED = 1


def make(registry: dict, described: dict):
    """The object :func:`~scifm.federated._simulate.describe` described."""
    settings = {k: v for k, v in described.items() if k != "name"}
    return registry[described["name"]](**settings)


def plan_key(plan: dict) -> str:
    """The name under which clients keep their state for this plan's run."""
    text = json.dumps(plan["config"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _record(tree) -> ArrayRecord:
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    return ArrayRecord({str(i): Array(np.asarray(x)) for i, x in enumerate(leaves)})


def _tree(record: ArrayRecord, like):
    arrays, static = eqx.partition(like, eqx.is_array)
    leaves, structure = jax.tree.flatten(arrays)
    if len(record) != len(leaves):
        raise UserError(f"a message holds {len(record)} arrays where {len(leaves)} are expected")
    new = [jnp.asarray(record[str(i)].numpy()) for i in range(len(leaves))]
    for old, x in zip(leaves, new, strict=True):
        if old.shape != x.shape or old.dtype != x.dtype:
            raise UserError(f"a message holds an array {x.shape} {x.dtype} for {old.shape}")
    return eqx.combine(jax.tree.unflatten(structure, new), static)


def payload(content: RecordDict) -> int:
    """Bytes of the arrays in a message (what dominates it on the wire)."""
    return sum(
        len(array.data)
        for record in content.array_records.values()
        for array in record.values()
    )


# ---------------------------------------------------------------- client (one per lab)


def _refuse(msg: Message, error: Exception) -> Message:
    return Message(Error(REFUSED, reason=str(error)), reply_to=msg)


def _node(context: Context) -> tuple[str, FieldSet, Path]:
    config = context.node_config
    missing = [key for key in ("name", "data", "state") if key not in config]
    if missing:
        raise UserError(f"the SuperNode's --node-config lacks {', '.join(missing)}")
    data = FieldSet.load(str(config["data"]))
    state = Path(str(config["state"]))
    # Flower starts a fresh ClientApp process per message: JAX's persistent cache keeps the
    # compiled local round from one round to the next (unless the user chose a cache)
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(state / "jax-cache"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return str(config["name"]), data, state


@client_app.query()
def describe_client(msg: Message, context: Context) -> Message:
    """Which client this node is, and what it holds (never the samples)."""
    try:
        name, data, _ = _node(context)
        fitted = Normalizer.fit(data)
    except (UserError, OSError) as e:
        return _refuse(msg, e)
    about = ConfigRecord(
        {
            "name": name,
            "n": len(data),
            "input_names": list(data.input_names),
            "output_names": list(data.output_names),
            "grid": list(data.grid),
            "source": bool(fitted.source),
            "has_field_scale": fitted.field_scale is not None,
        }
    )
    return Message(RecordDict({"about": about, "normalizer": _record(fitted)}), reply_to=msg)


def _client_state(folder: Path, r: int, like):
    """The client's state after its latest round before ``r`` (its first state if none)."""
    rounds = sorted(int(p.stem.split("-")[1]) for p in folder.glob("round-*.eqx"))
    earlier = [q for q in rounds if q < r]
    if not earlier:
        return like
    with open(folder / f"round-{earlier[-1]}.eqx", "rb") as fh:
        return eqx.tree_deserialise_leaves(fh, like)


def _save_client_state(folder: Path, r: int, state) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"round-{r}.eqx", lambda fh: eqx.tree_serialise_leaves(fh, state))
    for old in folder.glob("round-*.eqx"):  # keep this round's and the one before
        if int(old.stem.split("-")[1]) < r - 1:
            old.unlink()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """One round of local training on this lab's data."""
    try:
        name, data, state_dir = _node(context)
        config = msg.content["config"]
        model = _tree(msg.content["model"], skeleton(json.loads(str(config["model"]))))
        model.check_channels(data.input_names, data.output_names, f"client {name}")
        algorithm = make(ALGORITHMS, json.loads(str(config["algorithm"])))
        optimizer = make(CLIENT_OPTIMIZERS, json.loads(str(config["optimizer"])))
        params = eqx.filter(model.net, eqx.is_inexact_array)
        server = None
        if algorithm.shares_server_state:
            server = _tree(msg.content["server"], algorithm.init_server(params))
        r, steps, batch = int(config["round"]), int(config["local_steps"]), int(config["batch"])
        if len(data) < batch:
            raise UserError(f"client {name} holds {len(data)} samples, fewer than a batch {batch}")
        folder = state_dir / str(config["run"])
        before = _client_state(folder, r, init_client(algorithm, optimizer, model.net))
        f, c, u = client_steps(data, batch, int(config["shuffle_seed"]), r, steps)
        lrs = np.asarray(config["lrs"], np.float32)
        delta, after, loss = client_round(
            algorithm, optimizer, relative_l2, model, server, before, f, c, u, lrs
        )
        _save_client_state(folder, r, after)
    except (UserError, OSError) as e:
        return _refuse(msg, e)
    content = RecordDict(
        {
            "delta": _record(delta),
            "metrics": ConfigRecord({"loss": float(loss), "n": len(data), "name": name}),
        }
    )
    if after[1] is not None:
        content["extra"] = _record(jax.tree.map(lambda a, b: a - b, after[1], before[1]))
    return Message(content, reply_to=msg)


# ---------------------------------------------------------------- server


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the plan named by the run config's ``plan`` (a JSON file the launcher wrote)."""
    path = Path(str(context.run_config["plan"]))
    plan = json.loads(path.read_text())
    error = Path(plan["out"]).parent / ERROR_FILE
    error.unlink(missing_ok=True)
    try:
        serve(grid, plan)
    except (UserError, DivergenceError, OSError) as e:
        atomic_write_json(error, {"error": str(e)})
        raise


class _Federation:
    """The server's view of the clients: which node is which client."""

    def __init__(self, grid: Grid, names: list[str], deadline: float):
        self.grid, self.names, self.deadline = grid, names, deadline
        self.nodes: dict[str, int] = {}
        self.about: dict[str, ConfigRecord] = {}
        self.normalizers: dict[str, Normalizer] = {}
        self.asked: set[int] = set()

    def discover(self, wait: float) -> None:
        """Ask every node not yet known which client it is, for up to ``wait`` seconds or
        until every client is known."""
        until = time.monotonic() + wait
        while True:
            new = [n for n in self.grid.get_node_ids() if n not in self.asked]
            if new:
                self._ask(new)
            if set(self.nodes) >= set(self.names) or time.monotonic() >= until:
                return
            time.sleep(0.5)

    def _ask(self, node_ids: list[int]) -> None:
        messages = [Message(RecordDict(), dst_node_id=n, message_type="query") for n in node_ids]
        for reply in self.grid.send_and_receive(messages, timeout=self.deadline):
            node = reply.metadata.src_node_id
            self.asked.add(node)
            if reply.has_error() and reply.error.code == REFUSED:
                raise UserError(f"a node refused to join: {reply.error.reason}")
            if reply.has_error():  # Flower's own (the node is gone): ask nobody again
                continue
            about = reply.content["about"]
            name = str(about["name"])
            if name not in self.names:
                raise UserError(
                    f"a node joined as client {name!r}, which is not one of the plan's clients "
                    f"({', '.join(self.names)})"
                )
            self.nodes[name] = node
            self.about[name] = about
            record = reply.content["normalizer"]
            like = _like_normalizer(record, about)
            self.normalizers[name] = _tree(record, like)

    def check(self, batch: int) -> None:
        """Every client holds the same channels and grid, and at least a batch."""
        shape = lambda a: (tuple(a["input_names"]), tuple(a["output_names"]), tuple(a["grid"]))  # noqa: E731
        check_clients(
            {n: shape(self.about[n]) for n in self.names},
            {n: int(self.about[n]["n"]) for n in self.names}, batch, show=show_layout,
        )  # fmt: skip


def _like_normalizer(record: ArrayRecord, about: ConfigRecord) -> Normalizer:
    """A normaliser of the shapes in ``record`` (to read a client's into)."""
    shapes = [tuple(record[str(i)].shape) for i in range(len(record))]
    field = jnp.zeros(shapes[2]) if about["has_field_scale"] else None
    return Normalizer(
        jnp.zeros(shapes[0]), jnp.zeros(shapes[1]), field, source=bool(about["source"])
    )


def serve(grid: Grid, plan: dict) -> dict:
    """The server's loop: discover the clients, then train round by round (resuming the run
    directory ``plan["out"]``), aggregating the clients that answer within the deadline."""
    config = plan["config"]
    names = list(config["clients"])
    algorithm = make(ALGORITHMS, config["algorithm"])
    aggregator = make(AGGREGATORS, config["aggregator"])
    rounds, steps, batch = config["rounds"], config["local_steps"], config["batch_size"]
    federation = _Federation(grid, names, plan["deadline"])
    federation.discover(plan["join_timeout"])
    missing = [n for n in names if n not in federation.nodes]
    if missing:
        raise UserError(
            f"clients {', '.join(missing)} did not join within {plan['join_timeout']:g} s; "
            "start their SuperNodes (scifm federated node) and rerun: the run resumes"
        )
    federation.check(batch)
    aggregator.check(len(names), 0)
    first = federation.about[names[0]]
    model = fresh_model(
        config["preset"], config["seed"], list(first["input_names"]),
        list(first["output_names"]),
        combine_normalizers([federation.normalizers[n] for n in names]),
    )  # fmt: skip
    hyper = hyperparameters(model)
    run = RunDirectory.open(plan["out"], config)
    server = algorithm.init_server(eqx.filter(model.net, eqx.is_inexact_array))
    state = {"round": 0, "seconds": 0.0, "bytes_sent": 0, "bytes_received": 0}
    saved = run.load_state((model, server))
    if saved is not None:
        (model, server), state = saved
    run.keep_metrics(lambda row: row["round"] <= state["round"])
    evaluate = {name: FieldSet.load(path) for name, path in config["evaluate"].items()}
    shuffle = {name: config["seed"] + k for k, name in enumerate(names)}
    like_extra = init_client(algorithm, make(CLIENT_OPTIMIZERS, config["optimizer"]), model.net)[1]
    params_like = eqx.filter(model.net, eqx.is_inexact_array)
    absent: list[str] = []
    start_round = state["round"] + 1
    for r in range(start_round, rounds + 1):
        tic = time.perf_counter()
        if absent:  # a lab that left may be back, under a new node id: ask new nodes
            federation.discover(0.0)
        settings = {
            "round": r,
            "local_steps": steps,
            "batch": batch,
            "lrs": round_lrs(config["lr"], rounds, steps, r).tolist(),
            "run": plan_key(plan),
            "model": json.dumps(hyper),
            "algorithm": json.dumps(config["algorithm"]),
            "optimizer": json.dumps(config["optimizer"]),
        }
        weights_record = _record(model)  # serialised once a round, sent to every client
        server_record = _record(server) if algorithm.shares_server_state else None
        messages = []
        for name in names:
            content = RecordDict(
                {
                    "model": weights_record,
                    "config": ConfigRecord({**settings, "shuffle_seed": shuffle[name]}),
                }
            )
            if server_record is not None:
                content["server"] = server_record
            messages.append(
                Message(content, dst_node_id=federation.nodes[name], message_type="train")
            )
        # the first round a server runs (fresh or resumed) starts every client's JAX and
        # compiles its round: it may take the join timeout; later rounds get the deadline
        first = r == start_round
        deadline = max(plan["deadline"], plan["join_timeout"]) if first else plan["deadline"]
        replies = list(grid.send_and_receive(messages, timeout=deadline))
        answered, lost = {}, {}
        by_node = {node: name for name, node in federation.nodes.items()}
        for reply in replies:
            if reply.has_error() and reply.error.code == REFUSED:
                raise UserError(f"a client refused round {r}: {reply.error.reason}")
            if reply.has_error():  # Flower's own: the node is gone (no heartbeat), ...
                lost[by_node.get(reply.metadata.src_node_id, "?")] = reply.error.reason
                continue
            answered[str(reply.content["metrics"]["name"])] = reply
        absent = [n for n in names if n not in answered]
        if len(answered) < plan["min_clients"]:
            why = "".join(f"; {n}: {str(lost[n]).split(' — ')[0]}" for n in absent if n in lost)
            raise UserError(
                f"round {r}: only {len(answered)} of {len(names)} clients answered within "
                f"{deadline:g} s (absent: {', '.join(absent)}{why}; at least "
                f"{plan['min_clients']} needed); restart them and rerun: the run resumes at "
                f"round {r}"
            )
        order = [n for n in names if n in answered]
        deltas = [_tree(answered[n].content["delta"], params_like) for n in order]
        stack = lambda trees: jax.tree.map(lambda *x: jnp.stack(x), *trees)  # noqa: E731
        changes = None
        if like_extra is not None:
            changes = stack([_tree(answered[n].content["extra"], like_extra) for n in order])
        weights = jnp.asarray([float(answered[n].content["metrics"]["n"]) for n in order])
        model, server = server_round(
            algorithm, aggregator, model, server, stack(deltas), weights,
            None if changes is None else jax.tree.map(jnp.zeros_like, changes), changes,
        )  # fmt: skip
        state["bytes_sent"] += payload(messages[0].content)
        state["bytes_received"] += max(payload(answered[n].content) for n in order)
        losses = {n: float(answered[n].content["metrics"]["loss"]) for n in order}
        record_round(
            run, r, (model, server), model, state, losses, tic=tic, lr=config["lr"],
            rounds=rounds, local_steps=steps, sent=state["bytes_sent"],
            received=state["bytes_received"], evaluate=evaluate,
            eval_every=config["eval_every"], eval_batch_size=32, progress=NoProgress(),
            samples=len(order) * steps * batch,
        )  # fmt: skip
    return finish_run(run, model, hyper, state, state["bytes_sent"], state["bytes_received"])
