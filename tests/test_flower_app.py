"""scifm's Flower app in this process: the ServerApp's loop (`serve`) and the ClientApp, joined
by a Grid that hands each message to the ClientApp directly (Flower's own message and record
classes, no processes). Fast checks of the server's logic; tests/test_flower.py runs the same
app on Flower's real processes."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from scifm import UserError, data, federated, pdes, train
from scifm.federated import _flower

NAMES = ("lab-a", "lab-b")


class InProcessGrid(Grid):
    """Nodes ``id -> node config``; each message goes to the ClientApp at once. A node in
    ``dies_after`` stops answering after that many train messages (as a killed SuperNode)."""

    def __init__(self, nodes: dict[int, dict], dies_after: dict[int, int] | None = None):
        self.nodes, self.dies_after = nodes, dict(dies_after or {})
        self.trained = dict.fromkeys(nodes, 0)
        # what Flower sets before it calls a ServerApp (as its flwr.server.compat does)
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0

    def set_run(self, run):
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        raise NotImplementedError

    def get_node_ids(self):
        return list(self.nodes)

    def push_messages(self, messages):
        raise NotImplementedError

    def pull_messages(self, message_ids):
        raise NotImplementedError

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            if message.metadata.message_type == "train":
                self.trained[node] += 1
                if self.trained[node] > self.dies_after.get(node, float("inf")):
                    continue  # dead: no answer within the deadline
            context = Context(1, node, self.nodes[node], RecordDict(), {})
            replies.append(_flower.client_app(message, context))
        return replies


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flower-app")
    return {
        name: data.generate(pdes.Poisson(), 24, 16, 10 + i, d / f"{name}.h5")
        for i, name in enumerate(NAMES)
    }


def _plan(out, **changes):
    settings = dict(
        preset="fno-64k", algorithm=federated.Scaffold(), aggregator=federated.Mean(),
        optimizer=federated.Adam(), rounds=3, local_steps=2, batch_size=8, lr=3e-3, seed=4,
        evaluate={}, eval_every=1, deadline=60.0, join_timeout=5.0, min_clients=None,
    ) | changes  # fmt: skip
    return federated.flower_plan(out / "server", list(NAMES), **settings), settings


def _grid(files, tmp_path, **kw):
    nodes = {
        101 + i: {"name": n, "data": str(files[n]), "state": str(tmp_path / "nodes" / n)}
        for i, n in enumerate(NAMES)
    }
    return InProcessGrid(nodes, **kw)


def _weights(model):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(model.net)])


def test_the_served_rounds_equal_the_simulation(files, tmp_path):
    plan, settings = _plan(tmp_path)
    with jax.enable_x64(False):
        result = _flower.serve(_grid(files, tmp_path), plan)
        clients = [data.FieldSet.load(files[n]) for n in NAMES]
        model = federated.initial_model(clients, preset="fno-64k", seed=4)
        federated.simulate(
            model, clients, tmp_path / "sim", names=list(NAMES), algorithm=federated.Scaffold(),
            rounds=3, local_steps=2, batch_size=8, lr=3e-3, seed=4,
        )  # fmt: skip
        served, simulated = train.load(tmp_path / "server")[0], train.load(tmp_path / "sim")[0]
    np.testing.assert_array_equal(_weights(served), _weights(simulated))
    rows = [json.loads(line) for line in (tmp_path / "server" / "metrics.jsonl").open()]
    assert [sorted(r["train_loss"]) for r in rows] == [sorted(NAMES)] * 3
    # bytes measured on the messages (NumPy's serialised arrays: data plus a header of ~128
    # bytes each): SCAFFOLD sends the model and the server's control variate, and receives
    # the update and the change of the client's control variate
    sent = [x for tree in (model, model.net) for x in jax.tree.leaves(tree)]
    received = jax.tree.leaves(model.net) * 2
    for key, arrays in (("bytes_sent_per_client", sent), ("bytes_received_per_client", received)):
        raw = sum(np.asarray(x).nbytes for x in arrays)
        assert 3 * raw < result[key] <= 3 * (raw + 256 * len(arrays)), key


def test_a_client_that_stops_answering_is_left_out_when_min_clients_allows(files, tmp_path):
    plan, _ = _plan(tmp_path, algorithm=federated.FedAvg(), min_clients=1)
    with jax.enable_x64(False):
        result = _flower.serve(_grid(files, tmp_path, dies_after={102: 1}), plan)
    rows = [json.loads(line) for line in (tmp_path / "server" / "metrics.jsonl").open()]
    assert [sorted(r["train_loss"]) for r in rows] == [sorted(NAMES), ["lab-a"], ["lab-a"]]
    assert result["rounds"] == 3 and np.all(np.isfinite(_weights(train.load(tmp_path / "server")[0])))


def test_too_few_answers_stop_the_run_and_the_rerun_resumes(files, tmp_path):
    plan, _ = _plan(tmp_path, algorithm=federated.FedAvg())
    with jax.enable_x64(False):
        with pytest.raises(UserError, match="round 2: only 1 of 2 clients answered"):
            _flower.serve(_grid(files, tmp_path, dies_after={102: 1}), plan)
        assert not (tmp_path / "server" / "result.json").exists()
        result = _flower.serve(_grid(files, tmp_path), plan)  # the lab is back
        clients = [data.FieldSet.load(files[n]) for n in NAMES]
        model = federated.initial_model(clients, preset="fno-64k", seed=4)
        federated.simulate(
            model, clients, tmp_path / "sim", names=list(NAMES), rounds=3, local_steps=2,
            batch_size=8, lr=3e-3, seed=4,
        )  # fmt: skip
        served, simulated = train.load(tmp_path / "server")[0], train.load(tmp_path / "sim")[0]
    assert result["rounds"] == 3
    np.testing.assert_array_equal(_weights(served), _weights(simulated))


def test_a_node_of_another_client_or_grid_is_refused(files, tmp_path):
    plan, _ = _plan(tmp_path)
    grid = _grid(files, tmp_path)
    grid.nodes[102]["name"] = "lab-z"
    with pytest.raises(UserError, match="not one of the plan's clients"):
        _flower.serve(grid, plan)
    other = data.generate(pdes.Poisson(), 24, 32, 5, tmp_path / "p32.h5")
    grid = _grid(files, tmp_path)
    grid.nodes[102]["data"] = str(other)
    with pytest.raises(UserError, match="every client of one federation needs the same"):
        _flower.serve(grid, plan)
    assert not (tmp_path / "server").exists()
