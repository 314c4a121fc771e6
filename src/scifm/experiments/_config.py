"""Typed study configurations: a base plus overrides, read from TOML, saved as JSON.

A study file is TOML whose keys are the fields of :class:`Study` (tables for ``pretrain`` and
each task). It may start from another with ``base = "NAME or path"``: the base is read first
and the file's keys override it, table by table. Command-line overrides (``--set
pretrain.epochs=5``) apply last. Unknown keys, presets, systems, strategies and task names are
refused with one line that names the valid choices. Every value a sweep would trip on later
(counts, the resolution, learning rates, an entry given twice, two learning rates that would
share a run directory) is refused when the :class:`Study` is made, so ``scifm sweep --dry-run``
refuses it too and a refused study creates nothing. The resolved study is saved with the sweep
(``study.json``) and reloads to an equal object.
"""

from __future__ import annotations

import dataclasses
import typing
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from scifm import pdes
from scifm._checks import UserError, check_count, check_counts, check_nonempty, check_positive
from scifm._config import apply_overrides, build, plain, read_json_config, read_toml, shipped_names
from scifm.experiments._points import MethodKind, Point, PointKind
from scifm.models import get_preset
from scifm.pdes import check_resolution
from scifm.train import get_loss, get_strategy, physics_loss

METHODS = tuple(kind.value for kind in MethodKind)  # "zero-shot", ..., "physics"
DEFAULT_METHODS = ("zero-shot", "scratch", "finetune")
SPLITS = ("pretrain", "train", "val", "test")


@dataclass(frozen=True)
class Task:
    """One family of problems: a system and its parameter ranges (``options``), with a label."""

    system: str
    options: dict[str, Any] = field(default_factory=dict)
    shift: str = ""

    @classmethod
    def from_table(cls, data: dict, where: str) -> dict:
        """A task's TOML table: ``system``, ``shift`` and the system's options beside them."""
        if data.get("system") is None:
            raise UserError(f"{where.rstrip('.') or 'a task'}: a task needs a 'system' key")
        return {
            "system": data["system"],
            "shift": data.get("shift", ""),
            "options": {k: v for k, v in data.items() if k not in ("system", "shift")},
        }

    def to_table(self) -> dict:
        """The task as its TOML table (the inverse of :meth:`from_table`)."""
        return {"system": self.system, "shift": self.shift, **plain(self.options)}

    def build(self) -> pdes.AbstractPDESystem:
        """The PDE system; a wrong option names the valid ones."""
        cls = pdes.SYSTEMS.get(self.system)
        if cls is None:
            raise UserError(
                f"unknown system {self.system!r}; valid systems: {', '.join(pdes.SYSTEMS)}"
            )
        valid = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
        unknown = sorted(set(self.options) - set(valid))
        if unknown:
            raise UserError(
                f"unknown option {unknown[0]!r} for system {self.system}; valid options: "
                f"{', '.join(valid)}"
            )
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in self.options.items()}
        return cls(**options)

    def label(self) -> str:
        ranges = ", ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in self.build().ranges().items())
        return f"{self.system} ({ranges})"


@dataclass(frozen=True)
class Pretrain:
    """Pre-training on one task or a mixture: ``n`` samples split by ``proportions``."""

    tasks: tuple[str, ...]
    proportions: tuple[float, ...] = ()
    n: int = 1024
    n_val: int = 64
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3

    def counts(self) -> dict[str, int]:
        """Training samples per task; rounding goes to the first tasks."""
        p = self.proportions or (1.0,) * len(self.tasks)
        total = sum(p)
        counts = [int(self.n * w / total) for w in p]
        for i in range(self.n - sum(counts)):
            counts[i % len(counts)] += 1
        return dict(zip(self.tasks, counts, strict=True))


@dataclass(frozen=True)
class Study:
    """A transfer study: pre-train, then fine-tune / train from scratch / evaluate zero-shot.

    For every preset, downstream task, ``n`` in ``n_values`` and learning rate in ``lr_grid``,
    each method in ``methods`` is one run; every downstream run takes ``steps`` optimizer steps
    of ``batch_size`` (capped at ``n``), whatever ``n`` and the method, and the learning rate of
    each (method, n) is picked by validation error. The ``physics`` method (not in the default
    ``methods``) also runs at n = 0: it trains on every input of the downstream training set,
    the first ``n`` with their solutions, on the equation's residual
    (:class:`scifm.train.PhysicsLoss`), and picks its learning rate and checkpoint by the
    residual on the validation inputs, without their labels.

    ``downstream_resolution`` (0: ``resolution``) puts the downstream tasks on another grid
    than pre-training: the pre-trained model is scored zero-shot and fine-tuned there (the
    FNO's Fourier layers do not depend on the grid).

    ``seed`` fixes the datasets; every run (pre-training included) is repeated for each of
    ``seeds`` (default: ``seed`` alone), which seeds the model's initialisation, the order of
    the data and which ``n`` downstream examples are drawn (the first ``n`` for ``seed``, a
    random nested subset for the others). The report gives means over seeds with 95%
    confidence intervals.

    Raises:
        ValueError: a value no sweep can run (a count < 1, a resolution that is odd or below
            16, a learning rate that is not finite and > 0, an entry listed twice, an unknown
            name, ...); the message names the key, the value and what is allowed.
    """

    name: str
    tasks: dict[str, Task]
    pretrain: Pretrain
    downstream: tuple[str, ...]
    presets: tuple[str, ...] = ("fno-64k",)
    resolution: int = 64
    downstream_resolution: int = 0
    seed: int = 0
    seeds: tuple[int, ...] = ()
    n_values: tuple[int, ...] = (8, 32, 128, 512)
    methods: tuple[str, ...] = DEFAULT_METHODS
    strategies: tuple[str, ...] = ("full",)
    lr_grid: tuple[float, ...] = (1e-3,)
    steps: int = 500
    batch_size: int = 16
    validations: int = 10
    n_val: int = 64
    n_test: int = 256
    loss: str = "relative_l2"
    slurm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        """Check every value a sweep would otherwise trip on later (in data generation, after
        pre-training, or as two points sharing a directory): one line naming the key."""
        _check_name("name", self.name)
        p = self.pretrain
        for name, value in (
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("validations", self.validations),
            ("n_val", self.n_val),
            ("n_test", self.n_test),
            ("pretrain.n", p.n),
            ("pretrain.n_val", p.n_val),
            ("pretrain.epochs", p.epochs),
            ("pretrain.batch_size", p.batch_size),
        ):
            check_count(name, value)
        check_count("seed", self.seed, minimum=0)
        if self.seeds:
            _check_list("seeds", self.seeds)
        for i, s in enumerate(self.seeds):
            check_count(f"seeds[{i}]", s, minimum=0)
        check_resolution(self.resolution)  # the rule of `scifm generate`
        if self.downstream_resolution:
            try:
                check_resolution(self.downstream_resolution)
            except ValueError as e:
                raise UserError(f"downstream_{e} (0: the pre-training resolution)") from None
        check_positive("pretrain.lr", p.lr)
        if not self.tasks:
            raise UserError("tasks: define at least one task")
        for name, task in self.tasks.items():
            _check_name(f"task name {name!r}", name)
            try:
                task.build()
            except (TypeError, ValueError) as e:
                raise UserError(f"tasks.{name}: {e}") from None
        for where, names in (
            ("pretrain.tasks", p.tasks),
            ("downstream", self.downstream),
        ):
            _check_list(where, names)
            for name in names:
                if name not in self.tasks:
                    raise UserError(
                        f"{where}: unknown task {name!r}; defined tasks: {', '.join(self.tasks)}"
                    )
        if p.proportions and len(p.proportions) != len(p.tasks):
            raise UserError(
                f"pretrain.proportions must be {len(p.tasks)} positive numbers (one per task), "
                f"got {list(p.proportions)}"
            )
        for i, share in enumerate(p.proportions):
            check_positive(f"pretrain.proportions[{i}]", share)
        empty = [task for task, count in p.counts().items() if count < 1]
        if empty:
            raise UserError(
                f"pretrain.n = {p.n} leaves task {empty[0]!r} without samples; raise pretrain.n "
                "or that task's share in pretrain.proportions"
            )
        if self.downstream_resolution not in (0, self.resolution):
            shared = [t for t in self.downstream if t in p.tasks]
            if shared:
                raise UserError(
                    f"task {shared[0]!r} is both pre-trained on ({self.resolution}x"
                    f"{self.resolution}) and downstream (downstream_resolution = "
                    f"{self.downstream_resolution}); a task has one grid: define another task "
                    "of the same system for the downstream grid"
                )
        _check_list("presets", self.presets)
        for preset in self.presets:
            spec = get_preset(preset)
            for key, value in (
                ("resolution", self.resolution),
                ("downstream_resolution", self.downstream_resolution or self.resolution),
            ):
                if value < 2 * spec.modes:
                    raise UserError(
                        f"preset {preset} keeps {spec.modes} modes; it needs {key} >= "
                        f"{2 * spec.modes}, got {value}"
                    )
        _check_list("methods", self.methods)
        for method in self.methods:
            if method not in METHODS:
                raise UserError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
        if MethodKind.PHYSICS in self.methods:
            for task in self.downstream:
                try:
                    physics_loss(self.tasks[task].system)
                except ValueError as e:
                    raise UserError(f"methods: physics for task {task!r}: {e}") from None
        _check_list("strategies", self.strategies)
        for strategy in self.strategies:
            get_strategy(strategy)
        get_loss(self.loss)
        check_counts("n_values", self.n_values)
        _check_list("n_values", self.n_values)
        _check_list("lr_grid", self.lr_grid)
        runs: dict[str, float] = {}
        for i, lr in enumerate(self.lr_grid):
            check_positive(f"lr_grid[{i}]", lr)
            # the run directory names the rate: two rates must not share it
            run = Point(PointKind.SCRATCH, self.presets[0], self.downstream[0], 1, lr).directory
            name = run.rsplit("-", 1)[-1]
            if run in runs:
                raise UserError(
                    f"lr_grid: {runs[run]!r} and {lr!r} would share the run directories "
                    f"*-{name}; make them differ in their first 6 significant digits"
                )
            runs[run] = lr

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds every run is repeated over: ``seeds``, or the study's ``seed`` alone."""
        return self.seeds or (self.seed,)

    def point_seed(self, seed: int) -> int | None:
        """A replicate's :attr:`Point.seed`: None for the study's own seed (its directories)."""
        return None if seed == self.seed else seed

    def training_seed(self, point: Point) -> int:
        """The seed a point trains with: its replicate's, else the study's."""
        return self.seed if point.seed is None else point.seed

    def task_resolution(self, task: str) -> int:
        """The grid side of a task's datasets: ``downstream_resolution`` (when given) for the
        downstream tasks, ``resolution`` for the others."""
        if task in self.downstream and self.downstream_resolution:
            return self.downstream_resolution
        return self.resolution

    # -- files -----------------------------------------------------------------------------------
    def data_seed(self, task: str, split: str) -> int:
        """A distinct, stable seed for each (task, split): no two files share sources."""
        return (self.seed * 1_000_003 + zlib.crc32(f"{task}/{split}".encode())) % 2**31

    def data_files(self) -> dict[tuple[str, str], int]:
        """Every dataset the study needs, as ``(task, split) -> number of samples``."""
        files = {}
        for task, count in self.pretrain.counts().items():
            files[(task, "pretrain")] = count
            files[(task, "val")] = max(self.pretrain.n_val, files.get((task, "val"), 0))
            files[(task, "test")] = self.n_test
        for task in self.downstream:
            files[(task, "train")] = max(self.n_values)
            files[(task, "val")] = max(self.n_val, files.get((task, "val"), 0))
            files[(task, "test")] = self.n_test
        return files

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = plain(dataclasses.asdict(self))
        d["tasks"] = {name: t.to_table() for name, t in self.tasks.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Study:
        return build(cls, data)


def _check_name(what: str, name: str) -> None:
    """A name that is safe as a file or directory name (it becomes one)."""
    if not (name and name[0].isalnum() and all(ch.isalnum() or ch in "-_." for ch in name)):
        raise UserError(
            f"{what} may use only letters, digits, '-', '_' and '.' (starting with a letter or "
            f"digit), got {name!r}"
        )


def _check_list(name: str, values: tuple) -> None:
    """At least one entry, each once (an entry names a run, a file or a row of the results)."""
    check_nonempty(name, values)
    seen = []
    for v in values:
        if v in seen:
            raise UserError(f"{name} lists {v!r} twice; give each entry once, got {list(values)}")
        seen.append(v)


# -- reading ---------------------------------------------------------------------------------------
def builtin_studies() -> list[str]:
    """Names of the studies shipped with scifm (``scifm sweep NAME``)."""
    return shipped_names(_configs())


def _configs() -> Path:
    return Path(str(resources.files("scifm.experiments") / "configs"))


def load_study(source: str | Path, overrides: typing.Sequence[str] = ()) -> Study:
    """Read a study (TOML path or shipped name, with its ``base``), apply ``overrides``, check it.

    Raises:
        ValueError: unreadable file, unknown key/preset/system/task/strategy, bad value.
    """
    path = Path(source)
    if path.suffix == ".json":  # a sweep's study.json
        data = read_json_config(path, "study")
    else:
        data = read_toml(source, _configs(), "study")
    apply_overrides(data, overrides)
    return Study.from_dict(data)
