"""Federated studies end to end: the CLI, the files, resuming and extending."""

import csv
import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from scifm import RunConflict, federated
from scifm._runs import RunDirectory
from scifm.cli import main

STUDY = """
name = "tiny-fed"
resolution = 16
rounds = 2
local_steps = 2
batch_size = 4
n_test = 8
eval_every = 1
heldout = ["poisson-ood"]
algorithms = ["fedavg", "scaffold"]
baselines = ["centralised", "local"]
[tasks.poisson]
system = "poisson"
[tasks.helmholtz]
system = "helmholtz"
[tasks.poisson-ood]
system = "poisson"
eig_range = [10.0, 20.0]
[clients]
lab-p = { poisson = 8 }
lab-h = { helmholtz = 8 }
lab-m = { poisson = 4, helmholtz = 4 }
[tasks.advdiff]
system = "advdiff"
[robustness]
attacks = ["sign-flip"]
aggregators = ["mean", "median"]
bad = 1
[fccl]
public = ["poisson-ood"]
n_public = 8
public_batch = 4
collab_steps = 1
presets = { lab-h = "fno-1m" }
variants = ["full", "no-collaboration"]
[settings.fccl]
modes = 4
rank = 3
[downstream]
task = "advdiff"
sources = ["scaffold"]
n_values = [4, 8]
steps = 4
n_val = 4
validations = 2
"""


def _rows(path):
    with open(path) as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


@pytest.fixture
def finished():
    return _finished()


@functools.cache  # once per worker (a module fixture is torn down when xdist's queue runs dry)
def _finished():
    root = Path(tempfile.mkdtemp(prefix="scifm-fedstudy-"))
    (root / "tiny.toml").write_text(STUDY)
    assert main(["federated", "study", str(root / "tiny.toml"), "--out", str(root / "out")]) == 0
    return root


@pytest.mark.xdist_group("fedstudy")  # one worker runs the study once
def test_a_study_writes_every_run_results_report_and_plots(finished):
    out = finished / "out"
    study = federated.load_study(out / "study.json")
    runs = [r.name for r in federated.plan(study)]
    assert runs == [
        "fedavg", "scaffold", "centralised", "local-lab-p", "local-lab-h", "local-lab-m",
        "robust-median-none", "robust-mean-sign-flip", "robust-median-sign-flip",
        "fccl-full", "fccl-no-collaboration", "finetune-scaffold-n4", "scratch-n4",
        "finetune-scaffold-n8", "scratch-n8",
    ]  # fmt: skip
    for name in runs:
        assert (out / "runs" / name / "result.json").exists()
    rows = _rows(out / "results.csv")
    # three clients' distributions and the held-out task; one downstream error per downstream run
    # FCCL+: each of three models on the four test sets
    assert len(rows) == (len(runs) - 6) * 4 + 4 + 2 * 12
    hetero = json.loads((out / "runs" / "fccl-full" / "config.json").read_text())
    assert [hetero["clients"][c]["width"] for c in ("lab-p", "lab-h")] == [16, 32]
    assert hetero["fccl"]["correlation"] == 0.1  # the default weight
    alone = json.loads((out / "runs" / "fccl-no-collaboration" / "config.json").read_text())
    assert alone["fccl"]["correlation"] == alone["fccl"]["distillation"] == 0.0
    fccl_roles = {(r["client"], r["test_set"]): r["role"] for r in rows if r["run"] == "fccl-full"}
    assert fccl_roles[("lab-h", "lab-h")] == "own" and fccl_roles[("lab-h", "lab-p")] == "other"
    tuned = json.loads((out / "runs" / "finetune-scaffold-n8" / "config.json").read_text())
    assert tuned["n_train"] == 8 and tuned["source"] == "scaffold"
    assert tuned["init"] == str(out / "runs" / "scaffold")
    scratch = json.loads((out / "runs" / "scratch-n8" / "config.json").read_text())
    assert scratch["init"] is None and scratch["n_train"] == 8
    down = [r for r in rows if r["role"] == "downstream"]
    assert {(r["source"], r["n"]) for r in down} == {
        (s, n) for s in ("scaffold", "") for n in ("4", "8")
    }
    central = json.loads((out / "runs" / "centralised" / "config.json").read_text())
    assert central["batch_size"] == 12 and list(central["clients"]) == ["pooled"]
    assert central["clients"]["pooled"]["n"] == 24
    local = json.loads((out / "runs" / "local-lab-m" / "config.json").read_text())
    assert list(local["clients"]) == ["lab-m"] and local["clients"]["lab-m"]["n"] == 8
    attacked = json.loads((out / "runs" / "robust-median-sign-flip" / "config.json").read_text())
    assert attacked["attack"]["name"] == "sign-flip" and len(attacked["bad"]) == 1
    assert attacked["aggregator"]["name"] == "median"
    mixed = json.loads((out / "runs" / "fedavg" / "config.json").read_text())
    assert mixed["evaluate"]["lab-m"]["n"] == 8  # 4 + 4 test samples of its two tasks
    roles = {(r["run"], r["test_set"]): r["role"] for r in rows}
    assert roles[("local-lab-p", "lab-p")] == "own"
    assert roles[("local-lab-p", "lab-h")] == "other"
    assert roles[("fedavg", "poisson-ood")] == "heldout"
    report = (out / "report.md").read_text()
    assert "| scaffold |" in report and "| local-only |" in report and "## Robustness" in report
    assert "## Downstream" in report and "| scratch |" in report
    assert "## FCCL+" in report and "| no-collaboration |" in report
    for png in ("error_vs_round", "client_spread", "communication", "robustness", "downstream"):
        assert (out / f"{png}.png").stat().st_size > 1000
    # SCAFFOLD sends its control variates too: twice FedAvg's bytes
    by_run = {r["run"]: int(r["bytes_sent_per_client"]) for r in rows}
    assert by_run["scaffold"] == 2 * by_run["fedavg"] > 0


@pytest.mark.xdist_group("fedstudy")  # one worker runs the study once
def test_a_rerun_skips_finished_runs_and_an_extension_runs_only_the_new_ones(finished):
    out = finished / "out"
    stamp = (out / "runs" / "fedavg" / "result.json").stat().st_mtime_ns
    before = _rows(out / "results.csv")
    assert main(["federated", "study", str(finished / "tiny.toml"), "--out", str(out)]) == 0
    assert _rows(out / "results.csv") == before
    args = ["--set", 'algorithms=["fedavg", "scaffold", "fedprox"]']
    assert main(["federated", "study", str(finished / "tiny.toml"), "--out", str(out), *args]) == 0
    assert (out / "runs" / "fedavg" / "result.json").stat().st_mtime_ns == stamp
    assert {r["run"] for r in _rows(out / "results.csv")} >= {"fedprox"}
    with pytest.raises(RunConflict, match="another federated study .*rounds: 2 -> 3"):
        federated.run_study(
            federated.load_study(finished / "tiny.toml", ["rounds=3"]), out, progress=False
        )


class _Stop(Exception):
    pass


@pytest.mark.xdist_group("fedstudy")  # one worker runs the study once
def test_a_study_stopped_mid_run_resumes_to_the_same_results(finished, tmp_path, monkeypatch):
    study = federated.load_study(finished / "tiny.toml")
    original = RunDirectory.save_state
    calls = []

    def save_state(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 5:  # inside the third run (two saves a run)
            raise _Stop

    monkeypatch.setattr(RunDirectory, "save_state", save_state)
    with pytest.raises(_Stop):
        federated.run_study(study, tmp_path / "s", progress=False)
    assert not (tmp_path / "s" / "results.csv").exists()
    monkeypatch.setattr(RunDirectory, "save_state", original)
    federated.run_study(study, tmp_path / "s", progress=False)
    names = {r.name for r in federated.plan(study)}
    whole = [r for r in _rows(finished / "out" / "results.csv") if r["run"] in names]
    assert _rows(tmp_path / "s" / "results.csv") == whole


@pytest.mark.parametrize("name", ["fed-demo", "fed-robust"])
def test_shipped_studies_load_and_plan(name):
    study = federated.load_study(name)
    assert federated.plan(study)
    assert federated.load_study(name, ["rounds=3"]).rounds == 3


def test_dirichlet_split_sums_fills_batches_and_skews_with_small_alpha():
    tasks = ("poisson", "helmholtz", "advdiff")
    split = federated.dirichlet_clients(tasks, 6, 600, 0.3, 0, 16)
    assert list(split) == [f"client-{k}" for k in range(1, 7)]
    sizes = [sum(h.values()) for h in split.values()]
    assert sum(sizes) == 600 and min(sizes) >= 16
    assert split == federated.dirichlet_clients(tasks, 6, 600, 0.3, 0, 16)  # deterministic

    def dominance(alpha):  # mean share of each client's largest task, over many draws
        shares = []
        for seed in range(40):
            for h in federated.dirichlet_clients(tasks, 6, 600, alpha, seed, 16).values():
                shares.append(max(h.values()) / sum(h.values()))
        return float(np.mean(shares))

    assert dominance(0.1) > 0.85 > 0.5 > dominance(100.0)  # skewed vs nearly even (1/3)


def test_a_dirichlet_study_draws_its_clients_and_reloads_the_same(tmp_path):
    path = tmp_path / "d.toml"
    text = (
        STUDY.split("[clients]")[0]
        + "[dirichlet]\nclients = 4\ntasks = ['poisson', 'helmholtz']\nn = 64\nalpha = 0.5\n"
    )
    path.write_text(text)
    study = federated.load_study(path, ["robustness.attacks=[]", "fccl.public=[]"])
    assert len(study.clients) == 4 and sum(sum(h.values()) for h in study.clients.values()) == 64
    (tmp_path / "study.json").write_text(json.dumps(study.to_dict()))
    assert federated.load_study(tmp_path / "study.json") == study
    with pytest.raises(ValueError, match="either a clients table or a dirichlet split"):
        federated.load_study(
            path, ["clients.a.poisson=8", "robustness.attacks=[]", "fccl.public=[]"]
        )
    with pytest.raises(ValueError, match="dirichlet.n = 12 cannot give 4 clients 4 samples"):
        federated.load_study(path, ["dirichlet.n=12", "robustness.attacks=[]", "fccl.public=[]"])
