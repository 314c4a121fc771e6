"""Federated studies: data for every client, the runs, and their results.

A study directory holds::

    study.json        the resolved study
    data/             TASK-train.h5 (the clients' slices) and TASK-test.h5 per task
    runs/NAME/        one run directory per run (resumable, :mod:`scifm._runs`)
    results.csv       one row per run and test set: the final error, bytes, seconds
    report.md, *.png  written by :func:`scifm.federated.write_report`

Runs: one per algorithm (mean aggregation, no attack), centralised training on the union,
local-only training per client, and FedAvg under each attack with each aggregation rule. All
federated runs start from the same initial weights (``seed``). A rerun skips finished runs and
resumes an unfinished one at its last round; a study that differs in more than its lists of
runs (``algorithms``, ``baselines``, ``robustness``) is refused.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scifm import data, train
from scifm._io import atomic_write_text
from scifm._progress import NoProgress, RunProgress
from scifm._runs import RESULT, RunFinished, open_study_directory, read_json
from scifm.data import FieldSet
from scifm.federated._aggregate import Mean
from scifm.federated._algorithms import FedAvg
from scifm.federated._attacks import NoAttack
from scifm.federated._config import FederatedStudy
from scifm.federated._fccl import fccl
from scifm.federated._simulate import initial_model, simulate

STUDY = "study.json"
EXTENSIBLE = ("algorithms", "baselines", "robustness", "settings")


class Kind:
    FEDERATED, CENTRALISED, LOCAL, ROBUST = "federated", "centralised", "local", "robust"
    FINETUNE, SCRATCH = "finetune", "scratch"  # downstream
    FCCL = "fccl"  # heterogeneous models


@dataclass(frozen=True)
class Run:
    """One run of a study: its directory name and what it trains."""

    name: str
    kind: str
    algorithm: str = "fedavg"
    aggregator: str = "mean"
    attack: str = "none"
    client: str = ""
    source: str = ""  # downstream: the run whose final model is fine-tuned
    n: int = 0  # downstream: training examples

    @property
    def label(self) -> str:
        if self.kind == Kind.LOCAL:
            return f"local-only ({self.client})"
        if self.kind == Kind.ROBUST:
            return f"fedavg + {self.aggregator}, attack {self.attack}"
        if self.kind == Kind.FCCL:
            return f"FCCL+ {self.algorithm}"
        if self.kind == Kind.FINETUNE:
            return f"fine-tune {self.source}, n = {self.n}"
        if self.kind == Kind.SCRATCH:
            return f"scratch, n = {self.n}"
        return self.name


def plan(study: FederatedStudy) -> list[Run]:
    """Every run of ``study``, in the order they run."""
    runs = [Run(a, Kind.FEDERATED, algorithm=a) for a in study.algorithms]
    if "centralised" in study.baselines:
        runs.append(Run("centralised", Kind.CENTRALISED))
    if "local" in study.baselines:
        runs += [Run(f"local-{c}", Kind.LOCAL, client=c) for c in study.clients]
    r = study.robustness
    for attack in ("none", *r.attacks) if r.attacks else ():
        for rule in r.aggregators:
            name = robust_run(study, rule, attack)
            if name != "fedavg":  # unattacked FedAvg with the mean is the fedavg run
                runs.append(Run(name, Kind.ROBUST, aggregator=rule, attack=attack))
    if study.fccl.public:
        runs += [Run(f"fccl-{v}", Kind.FCCL, algorithm=v) for v in study.fccl.variants]
    d = study.downstream
    for n in d.n_values if d.task else ():
        runs += [Run(f"finetune-{s}-n{n}", Kind.FINETUNE, source=s, n=n) for s in d.sources]
        runs.append(Run(f"scratch-n{n}", Kind.SCRATCH, n=n))
    return runs


def robust_run(study: FederatedStudy, rule: str, attack: str) -> str:
    """The directory name of FedAvg with ``rule`` under ``attack``."""
    if attack == "none" and rule == "mean" and "fedavg" in study.algorithms:
        return "fedavg"
    return f"robust-{rule}-{attack}"


def bad_clients(study: FederatedStudy) -> list[int]:
    """Which clients attack (indices in ``clients`` order): drawn once from the study's seed."""
    k, bad = len(study.clients), study.robustness.bad
    return sorted(np.random.default_rng([study.seed, 7]).choice(k, bad, replace=False).tolist())


def data_path(folder: Path, task: str, split: str) -> Path:
    return folder / "data" / f"{task}-{split}.h5"


def prepare(study: FederatedStudy, out: str | Path, progress: Callable | None = None) -> Path:
    """Create (or reopen) the study directory and generate the data it lacks.

    Raises:
        RunConflict: ``out`` holds another study or something else; nothing is written.
    """
    out = open_study_directory(
        out, study.to_dict(), what="federated study", extensible=EXTENSIBLE, saved_name=STUDY
    )
    (out / "data").mkdir(exist_ok=True)
    for (task, split), n in study.data_files().items():
        path = data_path(out, task, split)
        if path.exists():
            if progress is not None:
                progress(n)
            continue
        data.generate(
            study.tasks[task].build(),
            n,
            study.resolution,
            study.data_seed(task, split),
            path,
            progress=progress,
        )
    return out


def client_sets(study: FederatedStudy, out: Path) -> tuple[list[FieldSet], dict[str, FieldSet]]:
    """The clients' training sets and the named test sets: each client's own distribution
    (its tasks' test samples in proportion to its holdings) and each held-out task."""
    train = {t: data.FieldSet.load(data_path(out, t, "train")) for t in study.client_tasks()}
    test = {
        t: data.FieldSet.load(data_path(out, t, "test"))
        for t in (*study.client_tasks(), *study.heldout)
    }
    clients, tests = [], {}
    for client, slices in study.slices().items():
        parts = [train[t].subset(np.arange(lo, hi), t) for t, (lo, hi) in slices.items()]
        clients.append(FieldSet.concatenate(parts, name=client))
        total = sum(hi - lo for lo, hi in slices.values())
        shares = [
            test[t].subset(np.arange(max(1, round(study.n_test * (hi - lo) / total))), t)
            for t, (lo, hi) in slices.items()
        ]
        tests[client] = FieldSet.concatenate(shares, name=f"{client} test")
    for task in study.heldout:
        tests[task] = test[task]
    return clients, tests


def run_one(
    study: FederatedStudy, out: Path, run: Run, progress: RunProgress = NoProgress()
) -> dict:
    """Train ``run`` of ``study`` (resuming it), or read it if finished; its result."""
    folder = out / "runs" / run.name
    if run.kind in (Kind.FINETUNE, Kind.SCRATCH):  # reads the downstream task's files only
        return _downstream(study, out, run, folder, progress)
    if (folder / RESULT).exists():  # a finished run: no data to load
        return read_json(folder / RESULT, f"delete {folder} to redo the run")
    clients, tests = client_sets(study, out)
    names = list(study.clients)
    settings = dict(
        rounds=study.rounds,
        local_steps=study.local_steps,
        batch_size=study.batch_size,
        lr=study.lr,
        optimizer=study.client_optimizer(),
        seed=study.seed,
        evaluate=tests,
        eval_every=study.eval_every,
        progress=progress,
        metadata={
            "model": {"preset": study.preset},
            "study": study.name,
            "run": run.name,
            "kind": run.kind,
        },
    )
    if run.kind == Kind.FCCL:
        return _fccl(study, out, run, folder, clients, tests, settings)
    try:
        if run.kind == Kind.CENTRALISED:
            pooled = FieldSet.concatenate(clients, name="pooled")
            model = initial_model([pooled], preset=study.preset, seed=study.seed)
            settings["batch_size"] = len(clients) * study.batch_size
            return simulate(model, [pooled], folder, names=["pooled"], **settings)
        if run.kind == Kind.LOCAL:
            k = names.index(run.client)
            model = initial_model([clients[k]], preset=study.preset, seed=study.seed)
            return simulate(model, [clients[k]], folder, names=[run.client], **settings)
        model = initial_model(clients, preset=study.preset, seed=study.seed)
        robust = run.kind == Kind.ROBUST
        return simulate(
            model,
            clients,
            folder,
            names=names,
            algorithm=study.algorithm(run.algorithm) if not robust else FedAvg(),
            aggregator=study.aggregator(run.aggregator) if robust else Mean(),
            attack=study.attack(run.attack) if robust else NoAttack(),
            bad=bad_clients(study) if robust and run.attack != "none" else (),
            **settings,
        )
    except RunFinished:
        return read_json(folder / RESULT, f"delete {folder} to redo the run")


def public_set(study: FederatedStudy, out: Path) -> FieldSet:
    """The public inputs of FCCL+ (their solutions are dropped by :func:`fccl`)."""
    return FieldSet.concatenate(
        [data.FieldSet.load(data_path(out, t, "public")) for t in study.fccl.public], name="public"
    )


def _fccl(study, out, run, folder, clients, tests, settings) -> dict:
    names = list(study.clients)
    models = [
        initial_model([d], preset=study.fccl.presets.get(n, study.preset), seed=study.seed)
        for n, d in zip(names, clients, strict=True)
    ]
    try:
        return fccl(
            models, clients, public_set(study, out), folder, names=names,
            loss=study.fccl_loss(run.algorithm), rounds=study.rounds,
            local_steps=study.local_steps, collab_steps=study.fccl.collab_steps,
            batch_size=study.batch_size, public_batch=study.fccl.public_batch, lr=study.lr,
            seed=study.seed, evaluate=tests, eval_every=study.eval_every,
            metadata={"study": study.name, "run": run.name, "kind": run.kind},
            progress=settings["progress"],
        )  # fmt: skip
    except RunFinished:
        return read_json(folder / RESULT, f"delete {folder} to redo the run")


def _downstream(study, out: Path, run: Run, folder: Path, progress: RunProgress) -> dict:
    """Fine-tune a source run's final model (or train from scratch) on the downstream task;
    the result of :func:`run_one` with the test error of the best checkpoint."""
    d = study.downstream
    train_set = data.FieldSet.load(data_path(out, d.task, "train"), limit=run.n)
    val = data.FieldSet.load(data_path(out, d.task, "val"))
    test = data.FieldSet.load(data_path(out, d.task, "test"))
    batch = min(study.batch_size, run.n)
    epochs = math.ceil(d.steps / max(1, run.n // batch))
    if not (folder / RESULT).exists():
        init = out / "runs" / run.source if run.kind == Kind.FINETUNE else None
        if init is not None and not (init / RESULT).exists():
            raise RuntimeError(f"{run.label}: the source run {init} is not finished")
        model, _ = train.start_model(train_set, preset=study.preset, init=init, seed=study.seed)
        try:
            train.fit(
                model, train_set, val, folder, epochs=epochs, batch_size=batch, lr=d.lr,
                seed=study.seed, validate_every=max(1, epochs // d.validations),
                metadata={"model": {"preset": study.preset}, "study": study.name,
                          "run": run.name, "source": run.source,
                          "init": None if init is None else str(init)},
                progress=progress,
            )  # fmt: skip
        except RunFinished:
            pass
    fitted = read_json(folder / RESULT, f"delete {folder} to redo the run")
    best, _ = train.load(folder)
    return {
        "rounds": 0,
        "test": {d.task: float(np.mean(train.errors(best, test)))},
        "bytes_sent_per_client": 0,
        "seconds": fitted["train_seconds"],
        "steps": fitted["steps"],
    }


COLUMNS = (
    "run", "kind", "algorithm", "aggregator", "attack", "bad", "client", "source", "n",
    "test_set", "role",
    "rel_l2", "bytes_sent_per_client", "rounds", "seconds",
)  # fmt: skip


def _row(run: Run, result: dict, *, bad, client, test_set, role, error) -> dict:
    return {
        "run": run.name,
        "kind": run.kind,
        "algorithm": run.algorithm,
        "aggregator": run.aggregator,
        "attack": run.attack,
        "bad": bad,
        "client": client,
        "source": run.source,
        "n": run.n or "",
        "test_set": test_set,
        "role": role,
        "rel_l2": error,
        "bytes_sent_per_client": result["bytes_sent_per_client"],
        "rounds": result["rounds"],
        "seconds": result["seconds"],
    }


def result_rows(study: FederatedStudy, finished: list[tuple[Run, dict]]) -> list[dict]:
    """One row per (run, test set) from the runs' results."""
    rows = []
    bad = (
        ",".join(np.asarray(list(study.clients))[bad_clients(study)])
        if study.robustness.attacks
        else ""
    )
    for run, result in finished:
        if run.kind == Kind.FCCL:  # one model per client: every model on every test set
            for client, errors in result["test"].items():
                for test_set, error in errors.items():
                    role = (
                        "heldout"
                        if test_set in study.heldout
                        else "own"
                        if test_set == client
                        else "other"
                    )
                    rows.append(_row(run, result, bad="", client=client, test_set=test_set,
                                     role=role, error=error))  # fmt: skip
            continue
        for test_set, error in result["test"].items():
            if run.kind in (Kind.FINETUNE, Kind.SCRATCH):
                role = "downstream"
            elif test_set in study.heldout:
                role = "heldout"
            elif run.kind == Kind.LOCAL:
                role = "own" if test_set == run.client else "other"
            else:
                role = "client"
            rows.append(
                _row(
                    run, result,
                    bad=bad if run.kind == Kind.ROBUST and run.attack != "none" else "",
                    client=run.client, test_set=test_set, role=role, error=error,
                )
            )  # fmt: skip
    return rows


def write_results(rows: list[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return atomic_write_text(path, buffer.getvalue())
