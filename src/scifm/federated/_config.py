"""Federated study files: who holds what data, which algorithms, which attacks.

A study is TOML (``base =`` inheritance and ``--set`` overrides as for transfer studies,
:mod:`scifm._config`)::

    name = "fed-3"
    preset = "fno-64k"
    rounds = 20
    [tasks.poisson]                 # families of problems, as in transfer studies
    system = "poisson"
    [clients.lab-poisson]           # a client: training samples per task
    poisson = 256
    heldout = ["poisson-ood"]       # tasks no client holds: out-of-distribution error
    algorithms = ["fedavg", "scaffold"]
    baselines = ["centralised", "local"]
    [robustness]                    # FedAvg under attack, per aggregation rule
    attacks = ["sign-flip"]
    aggregators = ["mean", "median", "krum"]
    bad = 1
    [settings.fedprox]              # settings of any algorithm, rule or attack by name
    mu = 0.01

Clients that hold the same task get disjoint slices of its data. Names (algorithms,
aggregation rules, attacks, settings) are checked when the study is made: an unknown one lists
the valid ones, and a rule that cannot withstand ``bad`` clients is refused before any data is
generated.
"""

from __future__ import annotations

import dataclasses
import typing
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scifm._checks import UserError, check_count, check_counts, check_positive
from scifm._config import apply_overrides, build, plain, read_json_config, read_toml
from scifm.experiments import Task
from scifm.federated._aggregate import AGGREGATORS
from scifm.federated._algorithms import ALGORITHMS
from scifm.federated._attacks import ATTACKS
from scifm.federated._fccl import FCCLLoss
from scifm.federated._simulate import CLIENT_OPTIMIZERS
from scifm.models import get_preset
from scifm.pdes import check_resolution

BASELINES = ("centralised", "local")


def make(kind: str, name: str, registry: dict, settings: dict[str, dict[str, Any]], **defaults):
    """The object called ``name`` in ``registry``, with its ``settings`` (and ``defaults`` for
    keys it has and the settings do not give).

    Raises:
        ValueError: an unknown name (the valid ones are listed), an unknown setting (the valid
            settings are listed) or a bad value.
    """
    cls = registry.get(name)
    if cls is None:
        raise UserError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(registry)}")
    valid = [f.name for f in dataclasses.fields(cls)]
    given = dict(settings.get(name, {}))
    unknown = sorted(set(given) - set(valid))
    if unknown:
        choices = ", ".join(valid) if valid else "none"
        raise UserError(f"unknown setting {unknown[0]!r} of {kind} {name}; its settings: {choices}")
    kwargs = {k: v for k, v in defaults.items() if k in valid} | given
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"settings of {kind} {name}: {e}") from None


COMPONENTS = {
    "algorithm": ALGORITHMS,
    "aggregator": AGGREGATORS,
    "attack": ATTACKS,
    "optimizer": CLIENT_OPTIMIZERS,
}


def component(kind: str, name: str, settings: dict[str, dict[str, Any]] | None = None):
    """The algorithm, aggregator, attack or client optimiser called ``name``, with
    ``settings[name]`` (e.g. ``component("algorithm", "fedprox", {"fedprox": {"mu": 0.1}})``).

    Raises:
        ValueError: an unknown kind, name or setting (the valid ones are listed), a bad value.
    """
    if kind not in COMPONENTS:
        raise UserError(f"unknown kind {kind!r}; valid kinds: {', '.join(COMPONENTS)}")
    return make(kind, name, COMPONENTS[kind], settings or {})


@dataclass(frozen=True)
class Dirichlet:
    """Clients drawn by quantity skew instead of listed: ``clients`` clients over ``tasks``,
    ``n`` training samples in all. Each client's mixture of tasks is drawn from
    ``Dirichlet(alpha)`` over the tasks, and its share of the samples from ``Dirichlet(alpha)``
    over the clients (on top of ``batch_size`` samples each, so every client can fill a
    batch); small ``alpha`` skews both. Drawn once from the study's ``seed`` (NumPy's
    ``default_rng([seed, 11])``); counts are rounded by largest remainders, so they sum to
    ``n``. ``clients = 0``: off (the ``clients`` table is used)."""

    clients: int = 0
    tasks: tuple[str, ...] = ()
    n: int = 1024
    alpha: float = 0.5


def dirichlet_clients(
    tasks: typing.Sequence[str], clients: int, n: int, alpha: float, seed: int, minimum: int
) -> dict[str, dict[str, int]]:
    """The ``clients`` table of a :class:`Dirichlet` split (see there)."""
    rng = np.random.default_rng([seed, 11])
    sizes = minimum + _round_to(rng.dirichlet(np.full(clients, alpha)) * (n - clients * minimum))
    out = {}
    for k, size in enumerate(sizes):
        counts = _round_to(rng.dirichlet(np.full(len(tasks), alpha)) * size)
        out[f"client-{k + 1}"] = {t: int(c) for t, c in zip(tasks, counts, strict=True) if c > 0}
    return out


def _round_to(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to integers with the same (integer) sum: largest remainders round up."""
    base = np.floor(x).astype(int)
    extra = int(round(x.sum())) - base.sum()
    base[np.argsort(base - x)[:extra]] += 1
    return base


@dataclass(frozen=True)
class Robustness:
    """FedAvg under each attack with each aggregation rule; ``bad`` clients attack."""

    attacks: tuple[str, ...] = ()
    aggregators: tuple[str, ...] = ("mean", "median", "trimmed-mean", "krum")
    bad: int = 1


@dataclass(frozen=True)
class Downstream:
    """Fine-tune the final models of ``sources`` (algorithms or ``centralised``) on ``task``
    with each ``n`` of ``n_values`` examples, against training from scratch: ``steps`` Adam
    steps of ``min(batch_size, n)`` at ``lr``, the best of ``validations`` checkpoints by the
    error on ``n_val`` validation samples, scored on the study's ``n_test`` test samples."""

    task: str = ""
    sources: tuple[str, ...] = ("fedavg", "centralised")
    n_values: tuple[int, ...] = (16, 64)
    steps: int = 200
    lr: float = 3e-3
    n_val: int = 32
    validations: int = 5


FCCL_VARIANTS = (
    "full", "no-correlation", "no-similarity", "no-amplitude", "no-distillation",
    "no-collaboration",
)  # fmt: skip


@dataclass(frozen=True)
class FCCL:
    """FCCL+ with each client's own model (``presets``: client -> preset, default the
    study's), on ``n_public`` unlabelled inputs of the ``public`` tasks; each of ``variants``
    is one run: the full method, one term removed (its weight 0), or no collaboration at all
    (every collaboration and distillation weight 0: each client trains alone). The terms'
    weights are ``settings.fccl``."""

    public: tuple[str, ...] = ()
    n_public: int = 256
    presets: dict[str, str] = field(default_factory=dict)
    variants: tuple[str, ...] = ("full", "no-collaboration")
    collab_steps: int = 1
    public_batch: int = 64


@dataclass(frozen=True)
class FederatedStudy:
    """A federated study; see the module docstring. Every run takes ``rounds * local_steps``
    optimiser steps: a federated client and a local-only client with batches of
    ``batch_size``, centralised training with batches of ``K * batch_size`` from the union (so
    it sees as many samples per step as a FedAvg round's clients together)."""

    name: str
    tasks: dict[str, Task]
    clients: dict[str, dict[str, int]] = field(default_factory=dict)
    heldout: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ("fedavg", "fedprox", "scaffold", "fedadam")
    baselines: tuple[str, ...] = BASELINES
    robustness: Robustness = field(default_factory=Robustness)
    dirichlet: Dirichlet = field(default_factory=Dirichlet)
    downstream: Downstream = field(default_factory=Downstream)
    fccl: FCCL = field(default_factory=FCCL)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    preset: str = "fno-64k"
    resolution: int = 32
    rounds: int = 20
    local_steps: int = 10
    batch_size: int = 16
    lr: float = 3e-3
    optimizer: str = "adam"
    n_test: int = 128
    eval_every: int = 2
    seed: int = 0

    def __post_init__(self):
        for key in ("rounds", "local_steps", "batch_size", "n_test", "eval_every"):
            check_count(key, getattr(self, key))
        check_count("seed", self.seed, minimum=0)
        check_positive("lr", self.lr)
        check_resolution(self.resolution)
        spec = get_preset(self.preset)
        if self.resolution < 2 * spec.modes:
            raise UserError(
                f"preset {self.preset} keeps {spec.modes} modes; it needs resolution >= "
                f"{2 * spec.modes}, got {self.resolution}"
            )
        if not self.tasks:
            raise UserError("tasks: define at least one task")
        for name, task in self.tasks.items():
            try:
                task.build()
            except (TypeError, ValueError) as e:
                raise UserError(f"tasks.{name}: {e}") from None
        q = self.dirichlet
        if q.clients:
            if self.clients:
                raise UserError("give either a clients table or a dirichlet split, not both")
            check_count("dirichlet.clients", q.clients)
            check_positive("dirichlet.alpha", q.alpha)
            if not q.tasks:
                raise UserError("dirichlet.tasks: list the tasks the clients draw from")
            for task in q.tasks:
                if task not in self.tasks:
                    raise UserError(
                        f"dirichlet.tasks: unknown task {task!r}; defined: {', '.join(self.tasks)}"
                    )
            if q.n < q.clients * self.batch_size:
                raise UserError(
                    f"dirichlet.n = {q.n} cannot give {q.clients} clients {self.batch_size} "
                    f"samples each (the batch size); raise it to >= {q.clients * self.batch_size}"
                )
            drawn = dirichlet_clients(q.tasks, q.clients, q.n, q.alpha, self.seed, self.batch_size)
            object.__setattr__(self, "clients", drawn)
        if not self.clients:
            raise UserError("clients: define at least one client (or a dirichlet split)")
        for client, holdings in self.clients.items():
            if not holdings:
                raise UserError(f"clients.{client}: give its training samples per task")
            for task, n in holdings.items():
                if task not in self.tasks:
                    raise UserError(
                        f"clients.{client}: unknown task {task!r}; defined tasks: "
                        f"{', '.join(self.tasks)}"
                    )
                check_count(f"clients.{client}.{task}", n)
            if sum(holdings.values()) < self.batch_size:
                raise UserError(
                    f"clients.{client} holds {sum(holdings.values())} samples, fewer than the "
                    f"batch size {self.batch_size}"
                )
        for task in self.heldout:
            if task not in self.tasks:
                raise UserError(f"heldout: unknown task {task!r}; defined: {', '.join(self.tasks)}")
            if task in self.clients:
                raise UserError(f"heldout task {task!r} has a client's name; rename one of them")
        if self.optimizer not in CLIENT_OPTIMIZERS:
            raise UserError(
                f"unknown optimizer {self.optimizer!r}; valid optimizers: "
                f"{', '.join(CLIENT_OPTIMIZERS)}"
            )
        for name in self.baselines:
            if name not in BASELINES:
                raise UserError(
                    f"unknown baseline {name!r}; valid baselines: {', '.join(BASELINES)}"
                )
        known = {**ALGORITHMS, **AGGREGATORS, **ATTACKS, **CLIENT_OPTIMIZERS, "fccl": FCCLLoss}
        for name in self.settings:  # every settings table is checked, used by a run or not
            if name in ALGORITHMS:
                self.algorithm(name)
            elif name in AGGREGATORS:
                self.aggregator(name)
            elif name in ATTACKS:
                self.attack(name)
            elif name in CLIENT_OPTIMIZERS:
                make("optimizer", name, CLIENT_OPTIMIZERS, self.settings)
            elif name == "fccl":
                self.fccl_loss("full")
            else:
                raise UserError(
                    f"settings.{name}: not an algorithm, aggregator, attack or optimizer; valid: "
                    f"{', '.join(known)}"
                )
        for name in self.algorithms:
            self.algorithm(name)
        self.client_optimizer()
        r = self.robustness
        check_count("robustness.bad", r.bad, minimum=0)
        if r.attacks and r.bad < 1:
            raise UserError("robustness.bad must be >= 1 when attacks are listed")
        if r.bad >= len(self.clients) and r.attacks:
            raise UserError(
                f"robustness.bad = {r.bad} of {len(self.clients)} clients leaves no honest one"
            )
        for name in r.attacks:
            if name == "none":
                raise UserError(
                    "robustness.attacks: 'none' is implied (every rule runs unattacked)"
                )
            self.attack(name)
        for name in r.aggregators if r.attacks else ():
            self.aggregator(name).check(len(self.clients), r.bad)

        d = self.downstream
        if d.task:
            if d.task not in self.tasks:
                raise UserError(
                    f"downstream.task: unknown task {d.task!r}; defined: {', '.join(self.tasks)}"
                )
            if d.task in self.client_tasks():
                raise UserError(
                    f"downstream.task {d.task!r} is a client's task; fine-tuning needs a task "
                    "no client holds (define another task of the same system)"
                )
            check_counts("downstream.n_values", d.n_values)
            for key in ("steps", "n_val", "validations"):
                check_count(f"downstream.{key}", getattr(d, key))
            check_positive("downstream.lr", d.lr)
            runs = (*self.algorithms, *(b for b in self.baselines if b == "centralised"))
            for source in d.sources:
                if source not in runs:
                    raise UserError(
                        f"downstream.sources: {source!r} is not a run of this study; its runs "
                        f"with one final model: {', '.join(runs)}"
                    )

        f = self.fccl
        if f.public:
            for task in f.public:
                if task not in self.tasks:
                    raise UserError(
                        f"fccl.public: unknown task {task!r}; defined: {', '.join(self.tasks)}"
                    )
            check_count("fccl.n_public", f.n_public, minimum=len(f.public))
            check_count("fccl.collab_steps", f.collab_steps, minimum=0)
            check_count("fccl.public_batch", f.public_batch, minimum=2)
            if f.public_batch > f.n_public:
                raise UserError(
                    f"fccl.public_batch {f.public_batch} is more than fccl.n_public {f.n_public}"
                )
            for client, preset in f.presets.items():
                if client not in self.clients:
                    raise UserError(f"fccl.presets: unknown client {client!r}")
                spec = get_preset(preset)
                if self.resolution < 2 * spec.modes:
                    raise UserError(
                        f"fccl.presets.{client}: {preset} keeps {spec.modes} modes; it needs "
                        f"resolution >= {2 * spec.modes}, got {self.resolution}"
                    )
            for variant in f.variants:
                if variant not in FCCL_VARIANTS:
                    raise UserError(
                        f"unknown fccl variant {variant!r}; valid: {', '.join(FCCL_VARIANTS)}"
                    )
            self.fccl_loss("full")

    # -- objects from names ----------------------------------------------------------------------
    def algorithm(self, name: str):
        return make("algorithm", name, ALGORITHMS, self.settings)

    def aggregator(self, name: str):
        return make("aggregator", name, AGGREGATORS, self.settings, bad=self.robustness.bad)

    def attack(self, name: str):
        return make("attack", name, ATTACKS, self.settings)

    def fccl_loss(self, variant: str) -> FCCLLoss:
        """FCCL+'s loss for ``variant``: ``settings.fccl`` with the ablated weights set to 0."""
        full = make("method", "fccl", {"fccl": FCCLLoss}, self.settings)
        if variant == "no-collaboration":
            zero = ("correlation", "amplitude", "similarity", "distillation")
        elif variant == "full":
            zero = ()
        else:
            zero = (variant.removeprefix("no-"),)
        return dataclasses.replace(full, **dict.fromkeys(zero, 0.0))

    def client_optimizer(self):
        return make("optimizer", self.optimizer, CLIENT_OPTIMIZERS, self.settings)

    # -- data ------------------------------------------------------------------------------------
    def data_seed(self, task: str, split: str) -> int:
        return (self.seed * 1_000_003 + zlib.crc32(f"{task}/{split}".encode())) % 2**31

    def client_tasks(self) -> list[str]:
        return [t for t in self.tasks if any(t in h for h in self.clients.values())]

    def data_files(self) -> dict[tuple[str, str], int]:
        """Every dataset the study needs: ``(task, "train" | "test") -> samples``."""
        files = {}
        for task in self.client_tasks():
            files[(task, "train")] = sum(h.get(task, 0) for h in self.clients.values())
            files[(task, "test")] = self.n_test
        for task in self.heldout:
            files[(task, "test")] = self.n_test
        for task in self.fccl.public:
            files[(task, "public")] = self.public_counts()[task]
        d = self.downstream
        if d.task:
            files[(d.task, "train")] = max(d.n_values)
            files[(d.task, "val")] = d.n_val
            files[(d.task, "test")] = self.n_test
        return files

    def public_counts(self) -> dict[str, int]:
        """Public inputs per public task (the remainder to the first tasks)."""
        tasks = self.fccl.public
        counts = {t: self.fccl.n_public // len(tasks) for t in tasks}
        for t in tasks[: self.fccl.n_public - sum(counts.values())]:
            counts[t] += 1
        return counts

    def slices(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Each client's ``[start, stop)`` of each task's training file (disjoint, in order)."""
        start = {t: 0 for t in self.tasks}
        out = {}
        for client, holdings in self.clients.items():
            out[client] = {}
            for task, n in holdings.items():
                out[client][task] = (start[task], start[task] + n)
                start[task] += n
        return out

    def to_dict(self) -> dict:
        d = plain(dataclasses.asdict(self))
        d["tasks"] = {name: t.to_table() for name, t in self.tasks.items()}
        if self.dirichlet.clients:  # drawn again from the split when read back
            d["clients"] = {}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> FederatedStudy:
        return build(cls, data)


def _configs() -> Path:
    return Path(str(resources.files("scifm.federated") / "configs"))


def load_study(source: str | Path, overrides: typing.Sequence[str] = ()) -> FederatedStudy:
    """Read a federated study (TOML path or shipped name), apply ``overrides``, check it.

    Raises:
        ValueError: unreadable file, unknown key or name, a value no run can use.
    """
    path = Path(source)
    if path.suffix == ".json":
        data = read_json_config(path, "federated study")
    else:
        data = read_toml(source, _configs(), "federated study")
    apply_overrides(data, overrides)
    return FederatedStudy.from_dict(data)
