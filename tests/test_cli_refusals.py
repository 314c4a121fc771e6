"""Every command refuses bad input the same way: one line, exit 2, nothing created or changed.

The table runs each command's options through bad values (zero, negative, NaN, non-numeric,
out of range, foreign or finished run directories, missing files), in process; hypothesis
draws more bad numbers for the numeric options. A refusal must print at most a few lines on
stderr, no traceback, and leave the directory it ran in exactly as it was.
"""

import json
import math
import socket

import h5py
import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scifm import data, models, pdes, train
from scifm.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset, a finished training run and a foreign directory, shared by the cases."""
    root = tmp_path_factory.mktemp("world")
    path = data.generate(pdes.Poisson(), 8, 16, 0, root / "d.h5")
    fields = data.FieldSet.load(path)
    net = models.FNO(7, 1, 4, 2, key=jax.random.key(0))
    model = models.OperatorModel(models.Normalizer.fit(fields), net)
    train.fit(model, fields, fields, root / "run", epochs=1, batch_size=4, metadata={"model": {}})
    zero = data.generate(pdes.Poisson(), 4, 16, 1, root / "zero.h5")
    with h5py.File(zero, "r+") as f:
        f["outputs"][...] = 0.0  # relative errors of zero targets are not finite
    data.generate(pdes.Poisson(), 4, 32, 2, root / "d32.h5")
    for folder, last in (("prices", "11"), ("bad-prices", "0")):
        (root / folder).mkdir()
        rows = f"2020-01-02,10,11,9,10\n2020-01-03,10,12,9,11\n2020-01-06,11,11,{last},{last}\n"
        (root / folder / "AAA.csv").write_text("date,open,high,low,close\n" + rows)
    (root / "fed.toml").write_text(FED_STUDY)
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine")
    return root


def _tree(root) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _refused(world, capsys, args: list[str]) -> str:
    capsys.readouterr()
    before = _tree(world)
    code = main([a.format(w=world) for a in args])
    err = capsys.readouterr().err
    assert code == 2, (args, code, err)
    assert "Traceback" not in err and 0 < len(err.strip().splitlines()) <= 3, err
    assert _tree(world) == before, f"{args} changed files"
    return err


TRAIN = ["train", "--train", "{w}/d.h5", "--val", "{w}/d.h5", "--model", "fno-64k"]
PINN = [
    "pinn",
    "--pde",
    "poisson-2body",
    "--dim",
    "4",
    "--num-samples",
    "2",
    "--steps",
    "3",
    "--width",
    "4",
]

FED_STUDY = """
name = "tiny"
resolution = 16
rounds = 1
local_steps = 1
batch_size = 4
algorithms = ["fedavg"]
[tasks.poisson]
system = "poisson"
[clients]
lab-a = { poisson = 8 }
lab-b = { poisson = 8 }
lab-c = { poisson = 8 }
[robustness]
attacks = ["sign-flip"]
aggregators = ["mean", "median"]
"""
FED = ["federated", "study", "{w}/fed.toml", "--out", "{w}/fed-out"]
LAUNCH = ["federated", "launch", "--client", "a={w}/d.h5", "--client", "b={w}/d.h5", "--rounds", "1"]
LAUNCH += ["--batch-size", "4", "--out", "{w}/fl"]
PORTFOLIO = ["portfolio", "backtest", "--out", "{w}/bt"]

CASES = [
    # (arguments, part of the message)
    ([*TRAIN, "--out", "{w}/new", "--epochs", "0"], "--epochs"),
    ([*TRAIN, "--out", "{w}/new", "--batch-size", "-3"], "--batch-size"),
    ([*TRAIN, "--out", "{w}/new", "--lr", "nan"], "--lr"),
    ([*TRAIN, "--out", "{w}/new", "--lr", "0"], "--lr"),
    ([*TRAIN, "--out", "{w}/new", "--lr", "abc"], "not a number"),
    ([*TRAIN, "--out", "{w}/new", "--n", "0"], "--n"),
    ([*TRAIN, "--out", "{w}/new", "--validate-every", "0"], "--validate-every"),
    ([*TRAIN, "--out", "{w}/new", "--checkpoint-every", "-1"], "--checkpoint-every"),
    ([*TRAIN, "--out", "{w}/new", "--loss", "mae"], "valid losses"),
    ([*TRAIN, "--out", "{w}/new", "--finetune", "bogus"], "valid strategies"),
    ([*TRAIN, "--out", "{w}/new", "--model", "fno-1t"], "fno-1t"),
    (["train", "--train", "{w}/none.h5", "--val", "{w}/d.h5", "--out", "{w}/new"], "none.h5"),
    ([*TRAIN, "--out", "{w}/foreign", "--epochs", "1"], "not a scifm run directory"),
    ([*TRAIN, "--out", "{w}/d.h5", "--epochs", "1"], "is a file"),
    (["evaluate", "{w}/run", "--data", "{w}/d.h5", "--batch-size", "-3"], "--batch-size"),
    (["evaluate", "{w}/run", "--data", "{w}/d.h5", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "{w}/run", "--data", "{w}/none.h5"], "none.h5"),
    (["evaluate", "{w}/foreign", "--data", "{w}/d.h5"], "no checkpoint"),
    ([*PINN, "--lr", "0"], "--lr"),
    ([*PINN, "--lr", "-1"], "--lr"),
    ([*PINN, "--lr", "nan"], "--lr"),
    ([*PINN, "--n-test", "0"], "--n-test"),
    ([*PINN, "--checkpoint-every", "0"], "--checkpoint-every"),
    ([*PINN, "--eval-every", "-1"], "--eval-every"),
    ([*PINN, "--num-samples", "0"], "--num-samples"),
    ([*PINN, "--dim", "0"], "--dim"),
    ([*PINN, "--pde", "heat"], "valid:"),
    ([*PINN, "--estimator", "taylor"], "valid:"),
    ([*PINN, "--out", "{w}/foreign"], "not a scifm run directory"),
    ([*PINN, "--out", "{w}/run"], "another configuration"),
    (["generate", "poisson", "--n", "0", "--out", "{w}/g.h5"], "n must be"),
    (["generate", "poisson", "--n", "4", "--resolution", "33", "--out", "{w}/g.h5"], "resolution"),
    (["generate", "poisson", "--n", "4", "--eig", "5,1", "--out", "{w}/g.h5"], "eig"),
    (["inspect", "{w}/none.h5"], "none.h5"),
    (["inspect", "{w}/d.h5", "--png", "{w}/foreign"], "is a directory"),
    (["evaluate", "{w}/run", "--data", "{w}/zero.h5"], "not finite"),
    (["sweep", "demo", "--jobs", "0", "--out", "{w}/s"], "jobs"),
    (["sweep", "demo", "--executor", "bogus", "--out", "{w}/s"], "executor"),
    (["sweep", "demo", "--out", "{w}/foreign"], "not a scifm sweep"),
    (["demo", "--out", "{w}/foreign"], "not a scifm sweep"),
    (
        [*FED, "--set", "algorithms=['fedsgd']"],
        "unknown algorithm 'fedsgd'; valid algorithms: fedavg",
    ),
    ([*FED, "--set", "robustness.aggregators=['mode']"], "valid aggregators: mean, median"),
    ([*FED, "--set", "robustness.attacks=['flood']"], "valid attacks: none, noise"),
    ([*FED, "--set", "robustness.bad=2"], "median over 3 clients withstands at most 1 bad"),
    ([*FED, "--set", "rounds=0"], "rounds"),
    ([*FED, "--set", "settings.fedprox.nu=1"], "unknown setting 'nu' of algorithm fedprox"),
    ([*FED, "--set", "settings.trimmed-mean.beta=0.7"], "beta must be in [0, 0.5)"),
    ([*FED, "--set", "clients.lab-a.poisson=2"], "fewer than the batch size"),
    ([*FED, "--set", "heldout=['nope']"], "heldout: unknown task 'nope'"),
    ([*FED, "--set", "optimizer=lbfgs"], "valid optimizers: adam, sgd"),
    (
        [*FED, "--set", "fccl.public=['poisson']", "--set", "fccl.variants=['x']"],
        "unknown fccl variant 'x'",
    ),
    (
        [*FED, "--set", "fccl.public=['poisson']", "--set", "fccl.presets.lab-z='fno-1m'"],
        "fccl.presets: unknown client 'lab-z'",
    ),
    (
        [*FED, "--set", "settings.fccl.temperature=0"],
        "fccl temperature must be a finite number > 0",
    ),
    ([*FED, "--set", "downstream.task=poisson"], "downstream.task 'poisson' is a client's task"),
    (["federated", "study", "{w}/none.toml"], "no federated study file"),
    (["federated", "study", "fed-bogus"], "fed-demo, fed-fccl, fed-robust"),
    ([*FED[:-2], "--out", "{w}/foreign"], "not a scifm federated study"),
    ([*LAUNCH, "--algorithm", "fedsgd"], "valid algorithms: fedavg, fedprox, scaffold"),
    ([*LAUNCH, "--aggregator", "krum", "--setting", "krum.bad=1"], "needs at least 5 clients"),
    ([*LAUNCH, "--setting", "fedprox"], "NAME.KEY=VALUE"),
    ([*LAUNCH, "--setting", "fedprox.nu=1", "--algorithm", "fedprox"], "its settings: mu"),
    ([*LAUNCH, "--batch-size", "64"], "client a holds 8 samples, fewer than the batch size 64"),
    ([*LAUNCH, "--min-clients", "3"], "min_clients must be between 1 and the 2 clients"),
    ([*LAUNCH, "--client", "c={w}/d32.h5"], "every client of one federation needs the same"),
    ([*LAUNCH, "--client", "c={w}/none.h5"], "client c: no such file"),
    ([*LAUNCH, "--client", "c"], "--client takes NAME=VALUE"),
    ([*LAUNCH, "--tls", "{w}/foreign"], "no ca.crt (make them: scifm federated keys)"),
    ([*LAUNCH[:-2], "--out", "{w}/foreign"], "holds something else; choose another --out"),
    ([*LAUNCH, "--port", "70000"], "port 70000 is not a TCP port"),
    (["federated", "launch", "--out", "{w}/fl"], "give the clients"),
    ([*PORTFOLIO, "--data", "ftse-100"], "no such file ftse-100"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--assets", "ZZZ"], "unknown asset 'ZZZ'"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--start", "1990-01-01", "--end", "1990-02-01"], "lies outside"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--fee-bps", "-1"], "fee_bps must be"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--policy", "ddpg"], "policies: crp, buy-and-hold"),
    ([*PORTFOLIO, "--data", "{w}/bad-prices"], "non-positive low price (0.0) on 2020-01-06"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--start", "2020-13-01"], "is not a date"),
    ([*PORTFOLIO, "--data", "{w}/prices", "--policy", "{w}/foreign"], "holds no trained agent"),
    (["portfolio", "train", "--data", "{w}/prices", "--modules", "gan", "--out", "{w}/ag"], "unknown module 'gan'; modules: bcm, ipm, dam"),
    (["portfolio", "train", "--data", "{w}/prices", "--out", "{w}/ag"], "the agent needs more than"),
    (
        ["federated", "node", "--name", "a", "--data", "{w}/none.h5", "--server", "127.0.0.1:1",
         "--state", "{w}/node"],
        "no such dataset",
    ),
]


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(world, capsys, args, message):
    err = _refused(world, capsys, args)
    assert message in err, err


def test_a_port_in_use_is_refused_by_launch(world, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = _refused(world, capsys, [*LAUNCH, "--port", str(port)])
    assert f"port {port} on 127.0.0.1 is in use; choose another --port" in err, err


def test_a_finished_run_is_refused_and_left_as_it_was(world, capsys):
    run = json.loads((world / "run" / "config.json").read_text())
    assert run["epochs"] == 1
    err = _refused(world, capsys, [*TRAIN, "--out", "{w}/run", "--epochs", "1"])
    assert "another configuration" in err or "finished run" in err


BAD_NUMBERS = st.one_of(
    st.floats(max_value=0.0),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.text(alphabet="abcxyz,;", min_size=1, max_size=4),
)
BAD_COUNTS = st.one_of(st.integers(max_value=0), st.sampled_from(["1.5", "two", "", "nan"]))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    option=st.sampled_from(["--lr", "--steps", "--width", "--batch-size", "--n-test"]),
    number=BAD_NUMBERS,
    count=BAD_COUNTS,
)
def test_drawn_bad_numbers_are_refused(world, capsys, option, number, count):
    value = number if option == "--lr" else count
    if isinstance(value, float) and np.isfinite(value):
        value = f"{value:.6g}"
    _refused(world, capsys, [*PINN, option, str(value), "--out", "{w}/new"])


def test_ctrl_c_is_one_line_and_exit_130(world, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "generate", interrupted)
    assert main(["generate", "poisson", "--n", "4", "--out", str(world / "i.h5")]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "scifm: interrupted; what was saved is kept, and the same command resumes it"
    ]
