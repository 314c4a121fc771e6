"""The Flower deployment runner: real SuperLink and SuperNode processes on loopback.

Each test starts Flower's processes (a SuperLink, one SuperNode per client, a fresh ClientApp
process per message), so each takes tens of seconds; they are marked slow and run in CI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from scifm import UserError, data, federated, pdes, train

# one federation at a time: two of them on the 2 cores would each miss their deadlines
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flower")]
NAMES = ("lab-a", "lab-b")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flower-data")
    return {
        name: data.generate(pdes.Poisson(), 24, 16, 10 + i, d / f"{name}.h5")
        for i, name in enumerate(NAMES)
    }


def _settings(**changes):
    base = dict(
        preset="fno-64k", algorithm=federated.Scaffold(), aggregator=federated.Mean(),
        optimizer=federated.Adam(), rounds=2, local_steps=2, batch_size=8, lr=3e-3, seed=4,
        evaluate={}, eval_every=1, deadline=120.0, join_timeout=60.0, min_clients=None,
    )  # fmt: skip
    return base | changes


def _simulated(files, out, settings):
    """The in-process simulation of the same federation, in float32 as Flower's processes."""
    clients = [data.FieldSet.load(files[n]) for n in NAMES]
    with jax.enable_x64(False):
        model = federated.initial_model(clients, preset=settings["preset"], seed=settings["seed"])
        federated.simulate(
            model, clients, out, names=list(NAMES), algorithm=settings["algorithm"],
            rounds=settings["rounds"], local_steps=settings["local_steps"],
            batch_size=settings["batch_size"], lr=settings["lr"], seed=settings["seed"],
        )  # fmt: skip
        return train.load(out)[0]


def _assert_same_weights(a, b):
    wa = np.concatenate([np.ravel(x) for x in jax.tree.leaves(a.net)])
    wb = np.concatenate([np.ravel(x) for x in jax.tree.leaves(b.net)])
    assert np.max(np.abs(wa - wb)) <= 1e-6 * np.max(np.abs(wb))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_thread(fn, **kwargs):
    outcome = {}

    def target():
        try:
            outcome["result"] = fn(**kwargs)
        except Exception as e:  # noqa: BLE001 - handed to the test
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _wait(condition, timeout, what):
    until = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < until, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_flower_run_over_tls_with_node_authentication_equals_the_simulation(files, tmp_path):
    """SCAFFOLD over two SuperNodes, TLS with certificates made now, only registered nodes
    admitted: a node with an unknown key is refused, and the global model is the simulation's."""
    settings = _settings()
    tls = federated.make_certificates(tmp_path / "tls", ["127.0.0.1"])
    keys = {name: federated.make_node_key(tmp_path / "tls" / f"{name}.key") for name in NAMES}
    intruder_key = federated.make_node_key(tmp_path / "tls" / "intruder.key")
    port = _free_port()
    thread, outcome = _in_thread(
        federated.launch, clients=files, out=tmp_path / "fl", port=port, tls=tls, node_keys=keys,
        **settings,
    )  # fmt: skip
    log = tmp_path / "fl" / "flower" / "node-lab-a.log"
    _wait(lambda: log.exists() and "SuperNode ID" in log.read_text(), 120, "lab-a to join")
    intruder = federated.start_supernode(
        tmp_path / "intruder", "lab-b", files["lab-b"], tmp_path / "intruder-state",
        f"127.0.0.1:{port}", ca=tls.ca, private_key=intruder_key,
    )  # fmt: skip
    try:
        assert intruder.wait(timeout=60) != 0
    finally:
        federated.stop_processes([intruder])
    assert "Failed to activate SuperNode" in (tmp_path / "intruder" / "node-lab-b.log").read_text()
    thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["rounds"] == settings["rounds"]
    flower_model = train.load(tmp_path / "fl" / "server")[0]
    _assert_same_weights(flower_model, _simulated(files, tmp_path / "sim", settings))


def _supernode_pids(name: str, out: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "flower-supernode" in command and f'name="{name}"' in command and str(out) in command:
            pids.append(int(entry.name))
    return pids


def test_a_killed_supernode_is_left_out_and_the_run_ends(files, tmp_path):
    """lab-b's SuperNode is SIGKILLed after round 1: round 2 gets no answer from it (Flower
    reports the node gone, or the deadline passes), aggregates lab-a alone (min_clients 1) and
    the run ends with its model saved. (Stopping when too few answer, and resuming, is tested
    in process: tests/test_flower_app.py.)"""
    settings = _settings(algorithm=federated.FedAvg(), rounds=2, deadline=30.0, min_clients=1)
    out = tmp_path / "fl"
    thread, outcome = _in_thread(federated.launch, clients=files, out=out, **settings)
    metrics = out / "server" / "metrics.jsonl"
    _wait(lambda: metrics.exists() and metrics.read_text().count("\n") >= 1, 240, "round 1")
    pids = _supernode_pids("lab-b", out)
    assert pids
    for pid in pids:
        os.killpg(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [sorted(r["train_loss"]) for r in rows] == [sorted(NAMES), ["lab-a"]]
    assert outcome["result"]["rounds"] == 2
    assert np.all(np.isfinite(np.concatenate([np.ravel(x) for x in jax.tree.leaves(train.load(out / "server")[0].net)])))


def test_a_port_in_use_is_refused_before_anything_starts(files, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use"):
            federated.launch(files, tmp_path / "fl", port=port, **_settings())
    assert not (tmp_path / "fl" / "server").exists()


def test_bench_federated_measures_flower_beside_the_simulation(tmp_path, capsys):
    from scifm.cli import main

    out = tmp_path / "fed.json"
    argv = ["bench", "federated", "--presets", "fno-64k", "--clients", "1", "--resolution", "16"]
    argv += ["--local-steps", "1", "--rounds", "1", "--flower-clients", "1", "--out", str(out)]
    assert main(argv) == 0
    flower = json.loads(out.read_text())["flower"]
    assert flower["clients"] == 1 and flower["rounds"] == 2
    assert flower["flower_s"] > flower["simulation_s"] > 0
    assert flower["overhead"] == flower["flower_s"] / flower["simulation_s"]
    assert "Flower" in capsys.readouterr().out  # the table (rich wraps its headers)
