"""The run-directory layer: refusals, corrupt files, and fault injection after every save.

The fault-injection tests stop a run right after each save in turn (an exception raised as
the save returns, as a kill at that moment would), rerun it, and compare every file with an
uninterrupted run: identical on the CPU, for each long-running loop that uses the layer.
"""

import json

import jax
import numpy as np
import pytest

from scifm import RunError, RunFinished, data, federated, models, pdes, pinn, train
from scifm import operators as ops
from scifm._runs import RunDirectory

TIMING = {"seconds", "samples_per_s", "time_s", "train_seconds", "train_time_s", "elapsed_s"}


class _Stop(Exception):
    pass


def _stop_after_save(monkeypatch, k: int) -> list:
    """Make the ``k``-th ``save_state`` (counting from 1) raise right after it saved."""
    calls = []
    original = RunDirectory.save_state

    def save_state(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == k:
            raise _Stop

    monkeypatch.setattr(RunDirectory, "save_state", save_state)
    return calls


def _files(run) -> dict:
    """Every file of a run directory, JSON with its timings dropped, the rest as bytes."""
    out = {}
    for path in sorted(run.iterdir()):
        if path.name.endswith(".png"):
            continue
        if path.name in ("state.json", "config.json"):
            continue  # counters and provenance: compared through the files they produce
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            out[path.name] = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
        elif path.suffix == ".json":
            row = json.loads(path.read_text())
            out[path.name] = {k: v for k, v in row.items() if k not in TIMING}
        elif path.is_dir():  # FCCL+'s models/CLIENT checkpoints
            out[path.name] = _files(path)
        elif not path.name.startswith("state-"):
            out[path.name] = path.read_bytes()
    return out


def _resumes_after_every_save(run, tmp_path, monkeypatch) -> tuple:
    """Run ``run(out)`` whole, then stopped right after each of its saves in turn and rerun:
    every stopped run is unfinished and ends with the whole run's files. Returns the whole
    run's directory and its number of saves."""
    whole = tmp_path / "whole"
    calls = _stop_after_save(monkeypatch, 0)
    run(whole)
    saves = len(calls)  # now: later patches wrap this one, and its list goes on growing
    for k in range(1, saves + 1):
        stopped = tmp_path / f"stopped-{k}"
        _stop_after_save(monkeypatch, k)
        with pytest.raises(_Stop):
            run(stopped)
        assert not (stopped / "result.json").exists()
        _stop_after_save(monkeypatch, 0)
        run(stopped)
        assert _files(stopped) == _files(whole), f"stopped after save {k}"
    return whole, saves


def _tiny_model(coefficients=6):
    net = models.FNO(1 + coefficients, 1, 4, 2, key=jax.random.key(0))
    return models.OperatorModel(models.Normalizer(1.0, np.ones(coefficients)), net)


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    path = data.generate(pdes.Poisson(), 12, 16, 0, d / "tiny.h5")
    return data.FieldSet.load(path)


def _fit_operator(fields, out):
    # 3 steps an epoch (batch 4 of 12), 2 epochs, saved after every step and every validation
    return train.fit(
        _tiny_model(), fields, fields, out, epochs=2, batch_size=4, checkpoint_every=0.0
    )


def test_operator_fit_stopped_after_every_save_resumes_to_the_same_files(
    fields, tmp_path, monkeypatch
):
    whole, saves = _resumes_after_every_save(
        lambda out: _fit_operator(fields, out), tmp_path, monkeypatch
    )
    assert saves == 7  # 5 inside the epochs (not after the last step), 2 at validations
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def _fit_pinn(out):
    problem = pinn.make_problem("poisson-2body", 3, key=jax.random.key(0))
    return pinn.fit(
        problem,
        ops.STDE(2),
        steps=20,
        width=4,
        depth=1,
        batch_size=4,
        n_test=100,
        eval_every=15,
        checkpoint_every=10,
        run_dir=out,
    )


def test_pinn_fit_stopped_after_every_save_resumes_to_the_same_files(tmp_path, monkeypatch):
    _, saves = _resumes_after_every_save(_fit_pinn, tmp_path, monkeypatch)
    assert saves == 2  # at step 10 and at the end


def _federate(fields, out):
    # SCAFFOLD (server and client control variates, client Adam states) with a noisy client
    # (the attack's key comes from the round): everything a round carries over
    halves = [fields.subset(np.arange(6), "a"), fields.subset(np.arange(6, 12), "b")]
    return federated.simulate(
        _tiny_model(), halves, out, names=["a", "b"], algorithm=federated.Scaffold(),
        attack=federated.RandomNoise(scale=1e-3), bad=[1], rounds=3, local_steps=2,
        batch_size=3, evaluate={"all": fields}, eval_every=2,
    )  # fmt: skip


def test_federated_simulation_stopped_after_every_save_resumes_to_the_same_files(
    fields, tmp_path, monkeypatch
):
    whole, saves = _resumes_after_every_save(
        lambda out: _federate(fields, out), tmp_path, monkeypatch
    )
    assert saves == 3  # after every round
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert ["test" in r for r in rows] == [False, True, True]


def _collaborate(fields, out):
    # FCCL+ with two architectures, collaboration and distillation on public inputs
    halves = [fields.subset(np.arange(6), "a"), fields.subset(np.arange(6, 12), "b")]
    nets = [models.FNO(7, 1, w, 2, key=jax.random.key(w)) for w in (4, 6)]
    return federated.fccl(
        [models.OperatorModel(models.Normalizer.fit(h), n) for h, n in zip(halves, nets, strict=True)],
        halves, fields, out, names=["a", "b"], loss=federated.FCCLLoss(modes=2, rank=3),
        rounds=2, local_steps=2, collab_steps=1, batch_size=3, public_batch=6,
        evaluate={"all": fields},
    )  # fmt: skip


def test_fccl_stopped_after_every_save_resumes_to_the_same_files(fields, tmp_path, monkeypatch):
    whole, saves = _resumes_after_every_save(
        lambda out: _collaborate(fields, out), tmp_path, monkeypatch
    )
    assert saves == 2  # after every round (round 2 distils toward round 1's models)
    assert set(_files(whole)["models"]) == {"a", "b"}


def test_open_refuses_foreign_changed_and_finished_directories(tmp_path):
    fresh = RunDirectory.open(tmp_path / "new", {"a": 1})
    assert not (tmp_path / "new").exists()  # opening writes nothing
    fresh.log({"step": 1})
    assert json.loads((tmp_path / "new" / "config.json").read_text())["a"] == 1
    with pytest.raises(RunError, match=r"another configuration \(a: 1 -> 2; b: \(absent\) -> 3\)"):
        RunDirectory.open(tmp_path / "new", {"a": 2, "b": 3})
    RunDirectory.open(tmp_path / "new", {"a": 1}).write_result({"x": float("inf")})
    assert json.loads((tmp_path / "new" / "result.json").read_text()) == {"x": None}
    with pytest.raises(RunFinished, match="finished run"):
        RunDirectory.open(tmp_path / "new", {"a": 1})
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not a scifm run directory"):
        RunDirectory.open(tmp_path / "foreign", {"a": 1})
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="is a file"):
        RunDirectory.open(tmp_path / "file", {"a": 1})


def test_corrupt_run_files_are_named_with_what_to_do(tmp_path):
    run = RunDirectory.open(tmp_path / "run", {"a": 1})
    tree = {"w": np.arange(3.0)}
    run.save_state(tree, {"step": 1}, step=1)
    run.log({"step": 1})
    run.log({"step": 2})
    with open(tmp_path / "run" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3, "lo')  # a line torn by a kill: dropped
    assert [r["step"] for r in run.metrics()] == [1, 2]
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(RunError, match="metrics.jsonl line 2 is not JSON.*delete the run"):
        run.metrics()
    state = tmp_path / "run" / "state-1.eqx"
    state.write_bytes(state.read_bytes()[:5])
    with pytest.raises(RunError, match="state-1.eqx is corrupt or truncated"):
        run.load_state(tree)
    (tmp_path / "run" / "state.json").write_text("")
    with pytest.raises(RunError, match="state.json is not valid JSON"):
        run.load_state(tree)
    (tmp_path / "run" / "config.json").write_text("{")
    with pytest.raises(RunError, match="config.json is not valid JSON"):
        RunDirectory.open(tmp_path / "run", {"a": 1})


@pytest.mark.parametrize("modules", [(), ("ipm", "dam", "bcm")])
def test_portfolio_agent_stopped_after_every_save_resumes_to_the_same_files(tmp_path, monkeypatch, modules):
    from scifm import portfolio

    market = portfolio.winner_market(60, 2, winner=0, gain=0.005)
    if modules:  # the GANs need days that vary; they are trained once and read back
        market = portfolio.gbm_market(80, 2, seed=5)
    config = portfolio.AgentConfig(
        window=5, hidden=4, layers=(8,), batch=8, capacity=50, episode=10, episodes=4,
        modules=modules, dam_steps=5, dam_window=8, synthetic_days=4, prioritised=bool(modules),
    )  # fmt: skip

    def run(out):
        return portfolio.train_agent(market, out, config=config, seed=3, save_every=2)

    whole, saves = _resumes_after_every_save(run, tmp_path, monkeypatch)
    assert saves == 2 and (whole / "checkpoint.eqx").exists()
