"""Optional copies of the metrics in TensorBoard event files and a local MLflow store, read
back with their own formats' readers, not with scifm's writers."""

from __future__ import annotations

import json
import struct

import jax
import pytest

from scifm import data, pdes
from scifm.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("logging")
    train = data.generate(pdes.Poisson(), 32, 16, 0, d / "train.h5")
    val = data.generate(pdes.Poisson(), 8, 16, 1, d / "val.h5")
    return d, ["train", "--train", str(train), "--val", str(val), "--model", "fno-64k"]


def _tfrecords(path):
    """The records of a TFRecord file: u64 length, u32 crc, data, u32 crc (crcs not checked)."""
    blob, out, at = path.read_bytes(), [], 0
    while at < len(blob):
        (length,) = struct.unpack("<Q", blob[at : at + 8])
        out.append(blob[at + 12 : at + 12 + length])
        at += 16 + length
    return out


def test_metrics_reach_tensorboard_and_mlflow_as_metrics_jsonl_has_them(files, capsys):
    from mlflow.tracking import MlflowClient
    from tensorboardX.proto.event_pb2 import Event

    d, args = files
    run, store = d / "run", d / "mlruns"
    loggers = ["--log", "tensorboard", "--log", f"mlflow:{store}"]
    with jax.enable_x64(False):
        assert main([*args, "--epochs", "3", "--out", str(run), *loggers]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = {r["step"]: r["val_rel_l2"] for r in rows}
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    seen = {}
    for record in _tfrecords(events):
        event = Event.FromString(record)
        for value in event.summary.value:
            if value.tag == "val_rel_l2":
                seen[event.step] = value.simple_value
    assert seen.keys() == expected.keys() and len(seen) == 3
    assert all(seen[s] == pytest.approx(v, rel=1e-6) for s, v in expected.items())  # float32
    # the same run in a local SQLite MLflow store, its configuration as parameters
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("scifm").experiment_id])
    assert found.info.run_name == "run" and found.info.status == "FINISHED"
    assert found.data.params["lr"] == "0.001" and found.data.params["model.width"] == "16"
    history = client.get_metric_history(found.info.run_id, "val_rel_l2")
    assert [(m.step, m.value) for m in history] == [(r["step"], r["val_rel_l2"]) for r in rows]


def test_logging_is_off_by_default_and_a_bad_logger_is_refused_in_one_line(files, capsys):
    d, args = files
    with jax.enable_x64(False):
        assert main([*args, "--epochs", "1", "--out", str(d / "plain")]) == 0
    assert not (d / "plain" / "tensorboard").exists()
    capsys.readouterr()
    assert main([*args, "--epochs", "1", "--out", str(d / "bad"), "--log", "wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "--log 'wandb': the loggers are tensorboard[:DIR] and mlflow[:STORE]" in err
    assert not (d / "bad").exists()
