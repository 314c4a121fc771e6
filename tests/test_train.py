"""Training, evaluation, checkpoints and resumption, mostly through the CLI in float32 (in
this process, or a real one where a kill or the environment needs it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import jax
import numpy as np
import pytest

from scifm import data, models, pdes, train
from scifm.cli import main

TIMING = {"seconds", "samples_per_s"}


@pytest.fixture
def cli(capsys):
    """``cli(*args)``: the `scifm` command in this process, in float32 as from a shell."""

    def run(*args):
        capsys.readouterr()
        with jax.enable_x64(False):
            code = main(list(args))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


def scifm(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "scifm.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def poisson(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    tr = data.generate(pdes.Poisson(), 256, 32, 0, d / "train.h5")
    va = data.generate(pdes.Poisson(), 64, 32, 1, d / "val.h5")
    return str(tr), str(va)


def _metrics(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


@pytest.mark.slow
def test_small_model_learns_poisson_well_below_predicting_zero(poisson, tmp_path, cli):
    tr, va = poisson
    run = tmp_path / "run"
    r = cli(
        "train",
        "--train",
        tr,
        "--val",
        va,
        "--model",
        "fno-64k",
        "--epochs",
        "12",
        "--lr",
        "3e-3",
        "--out",
        str(run),
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((run / "result.json").read_text())
    assert result["best_val_rel_l2"] < 0.35  # predicting zero scores exactly 1
    for name in ("config.json", "checkpoint.eqx", "model.json", "state.json", "loss.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["preset"] == "fno-64k" and config["n_train"] == 256
    # evaluation reproduces the best validation error from the saved checkpoint
    r = cli("evaluate", str(run), "--data", va)
    assert r.returncode == 0, r.stderr
    (written,) = run.glob("eval-val-*.json")  # named after the file and its full path
    evaluated = json.loads(written.read_text())
    assert evaluated["data"] == str(Path(va).resolve())
    assert evaluated["rel_l2_mean"] == pytest.approx(result["best_val_rel_l2"], rel=1e-6)
    assert evaluated["n"] == 64 and evaluated["rel_l2_std"] > 0


@pytest.mark.slow
def test_sigkill_mid_training_resumes_to_the_same_metrics(poisson, tmp_path, cli):
    tr, va = poisson
    args = [
        "--train",
        tr,
        "--val",
        va,
        "--model",
        "fno-64k",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--n",
        "128",
        "--checkpoint-every",  # save after every step: the kill lands inside an epoch
        "0",
    ]
    whole = tmp_path / "whole"
    assert cli("train", *args, "--out", str(whole)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scifm.cli", "train", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.01)
        state = killed / "state.json"
        if state.exists():
            counters = json.loads(state.read_text() or "{}")
            if counters.get("epoch", 0) >= 1 and counters.get("step_in_epoch", 0) >= 2:
                break
        assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists()
    assert json.loads((killed / "state.json").read_text())["step_in_epoch"] >= 2
    r = scifm("train", *args, "--out", str(killed))
    assert r.returncode == 0, r.stderr
    assert _metrics(killed) == _metrics(whole)
    a, _ = train.load(killed)
    b, _ = train.load(whole)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_finished_or_foreign_run_directories_are_refused(poisson, tmp_path, cli):
    tr, va = poisson
    args = ["--train", tr, "--val", va, "--model", "fno-64k", "--epochs", "1", "--n", "32"]
    run = tmp_path / "run"
    assert cli("train", *args, "--out", str(run)).returncode == 0
    # the same file typed another way is the same configuration: the run is finished
    typed = str(Path(tr).parent / "." / ".." / Path(tr).parent.name / Path(tr).name)
    r = cli("train", *[typed if a == tr else a for a in args], "--out", str(run))
    assert r.returncode == 2 and "finished run of this configuration" in r.stderr, r.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = cli("train", *args, "--out", str(other))
    assert r.returncode == 2 and "not a scifm run directory" in r.stderr


def test_init_from_another_run_and_mismatches(poisson, tmp_path, cli):
    tr, va = poisson
    base = ["--train", tr, "--val", va, "--epochs", "1", "--n", "32"]
    pre = tmp_path / "pre"
    assert cli("train", *base, "--model", "fno-64k", "--out", str(pre)).returncode == 0
    ft = tmp_path / "ft"
    r = cli("train", *base, "--init", str(pre), "--out", str(ft))
    assert r.returncode == 0, r.stderr
    assert json.loads((ft / "config.json").read_text())["init"] == str(pre)
    r = cli("train", *base, "--init", str(pre), "--model", "fno-1m", "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    assert "preset fno-64k" in r.stderr and "width 16 vs 32" in r.stderr
    assert not (tmp_path / "x").exists()


def _tiny_model(coefficients=6):
    net = models.FNO(1 + coefficients, 1, 8, 2, key=jax.random.key(0))
    norm = models.Normalizer(1.0, np.ones(coefficients))
    return models.OperatorModel(norm, net)


def test_checkpoint_round_trip_and_corruption(tmp_path):
    model = _tiny_model()
    train.save(tmp_path, model, preset="custom")
    loaded, hyper = train.load(tmp_path)
    assert hyper["width"] == 8 and hyper["preset"] == "custom"
    for x, y in zip(
        jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

    weights = tmp_path / "checkpoint.eqx"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match="corrupt or does not match"):
        train.load(tmp_path)

    train.save(tmp_path, model)
    hyper_path = tmp_path / "model.json"
    hyper = json.loads(hyper_path.read_text())
    hyper_path.write_text(json.dumps({**hyper, "width": 16}))  # weights of another width
    with pytest.raises(ValueError, match="width 16"):
        train.load(tmp_path)
    hyper_path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid scifm model description"):
        train.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        train.load(tmp_path / "nowhere")


def test_wrong_channels_are_refused():
    hyper = train._checkpoint.hyperparameters(_tiny_model(), preset="custom")
    with pytest.raises(ValueError, match="in_channels 7 vs 4"):
        train.check_compatible(
            hyper, width=8, modes=2, in_channels=4, out_channels=1, source="--init x"
        )


def test_diverging_loss_stops_with_a_clear_message(tmp_path):
    path = data.generate(pdes.Poisson(), 8, 16, 0, tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f["outputs"][...] = 0.0  # relative error of a zero target is infinite
    fields = data.FieldSet.load(path)
    with pytest.raises(train.DivergenceError, match="loss became (nan|inf) in epoch 1: lower"):
        train.fit(_tiny_model(), fields, fields, tmp_path / "run", epochs=2)
    assert not (tmp_path / "run").exists()  # refused before its first save: nothing left


def test_nan_in_data_is_refused(tmp_path):
    path = data.generate(pdes.Poisson(), 4, 16, 0, tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f["inputs"][2, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        data.FieldSet.load(path)


def test_losses():
    pred = np.array([[1.0, 2.0], [0.0, 0.0]])
    target = np.array([[1.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(train.relative_l2_per_sample(pred, target), [1 / np.sqrt(2), 1.0])
    assert float(train.summed_squared_error(pred, target)) == pytest.approx((1 + 9 + 16) / 2)
    with pytest.raises(ValueError, match="valid losses: relative_l2, sse"):
        train.get_loss("mae")


@pytest.mark.slow
def test_data_parallel_on_two_cpu_devices_matches_one(poisson, tmp_path):
    tr, va = poisson
    args = [
        "train",
        "--train",
        tr,
        "--val",
        va,
        "--model",
        "fno-64k",
        "--epochs",
        "2",
        "--batch-size",
        "16",
    ]
    one = scifm(*args, "--out", str(tmp_path / "one"))
    two = scifm(
        *args,
        "--out",
        str(tmp_path / "two"),
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import jax; print(len(jax.devices()))"],
        capture_output=True,
        text=True,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert probe.stdout.strip() == "2"
    a, b = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    for x, y in zip(a, b, strict=True):
        assert x["val_rel_l2"] == pytest.approx(y["val_rel_l2"], rel=1e-4)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(args, out, n=2):
    """``n`` `scifm train` processes forming one runtime on loopback (one CPU device each)."""
    port = _free_port()
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "scifm.cli", "train", *args, "--out", str(out)]
            + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n)]
            + ["--process-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]


@pytest.mark.slow
def test_two_processes_on_loopback_train_as_one_and_resume_from_process_0s_checkpoint(
    poisson, tmp_path
):
    tr, va = poisson
    args = ["--train", tr, "--val", va, "--model", "fno-64k", "--epochs", "2"]
    args += ["--batch-size", "16", "--n", "128", "--checkpoint-every", "0"]
    one = scifm("train", *args, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr

    run = tmp_path / "two"
    procs = _processes(args, run)
    deadline = time.time() + 240
    while time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.01)
        if (run / "state.json").exists():
            counters = json.loads((run / "state.json").read_text() or "{}")
            if counters.get("epoch", 0) >= 1 and counters.get("step_in_epoch", 0) >= 2:
                break
    for p in procs:
        p.kill()
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == -signal.SIGKILL for p in procs), outputs  # killed mid-run
    assert not (run / "result.json").exists()

    procs = _processes(args, run)  # both resume from the state process 0 saved
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "batch split over 2 devices in 2 processes" in outputs[0][0]
    assert "best validation relative L2" in outputs[0][0]
    assert "best validation" not in outputs[1][0]  # process 0 reports
    a, b = _metrics(tmp_path / "one"), _metrics(run)
    assert [x["epoch"] for x in b] == [1, 2]
    for x, y in zip(a, b, strict=True):
        assert x["val_rel_l2"] == pytest.approx(y["val_rel_l2"], rel=1e-4)
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(coordinator="127.0.0.1:1234"), "give all of --coordinator"),
        (dict(num_processes=2, process_id=0), "give all of --coordinator"),
        (dict(coordinator="localhost", num_processes=2, process_id=0), "HOST:PORT"),
        (dict(coordinator="h:1", num_processes=2, process_id=2), "process_id must be < "),
        (dict(coordinator="h:1", num_processes=0, process_id=0), "num_processes must be"),
    ],
)
def test_distributed_arguments_are_refused_before_anything_starts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.initialize_distributed(**kwargs)


def test_one_process_needs_no_distributed_runtime(monkeypatch):
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    assert not train.initialize_distributed()
    assert not train.initialize_distributed("127.0.0.1:1", 1, 0)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")  # a one-task srun step
    assert not train.initialize_distributed()
