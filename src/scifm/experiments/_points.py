"""The vocabulary of a study: the methods it compares, the points it runs, their statuses.

A *method* is how a downstream model is obtained: the pre-trained model as it is
(zero-shot), training from scratch, fine-tuning the pre-trained model with a strategy, or
fine-tuning it on the equation's residual (physics-informed: every training input, of which
only ``n`` carry their solution, down to none).
A *point* is one run of the sweep: pre-training a preset, or one downstream (method, task,
n, lr). Display labels ("fine-tune (full)") and directory names ("finetune-full") are made
from these objects, never parsed back.

The enumerations are :class:`enum.StrEnum` because their values are what ``point.json``,
``study.json`` and results.csv hold ("finetune", "ok", ...): existing sweep directories read
unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from scifm._checks import UserError


class MethodKind(enum.StrEnum):
    """The ways to get a downstream model; the values are the study's ``methods``."""

    ZERO_SHOT = "zero-shot"
    SCRATCH = "scratch"
    FINETUNE = "finetune"
    PHYSICS = "physics"


@dataclass(frozen=True)
class Method:
    """One downstream method: a :class:`MethodKind` and, for fine-tuning, its strategy.

    Build them with :meth:`zero_shot`, :meth:`scratch`, :meth:`finetune` and :meth:`physics`.
    """

    kind: MethodKind
    strategy: str | None = None  # the fine-tuning strategy; None for zero-shot and scratch

    def __post_init__(self):
        object.__setattr__(self, "kind", MethodKind(self.kind))
        if (self.kind is MethodKind.FINETUNE) != (self.strategy is not None):
            raise UserError(f"a strategy is given exactly for fine-tuning, got {self!r}")

    @classmethod
    def zero_shot(cls) -> Method:
        return cls(MethodKind.ZERO_SHOT)

    @classmethod
    def scratch(cls) -> Method:
        return cls(MethodKind.SCRATCH)

    @classmethod
    def finetune(cls, strategy: str) -> Method:
        return cls(MethodKind.FINETUNE, strategy)

    @classmethod
    def physics(cls) -> Method:
        return cls(MethodKind.PHYSICS)

    @property
    def label(self) -> str:
        """For people: "zero-shot", "scratch", "fine-tune (full)", "physics-informed"."""
        if self.kind is MethodKind.FINETUNE:
            return f"fine-tune ({self.strategy})"
        if self.kind is MethodKind.PHYSICS:
            return "physics-informed"
        return self.kind.value

    @property
    def slug(self) -> str:
        """For directory names: "zero-shot", "scratch", "finetune-full"."""
        if self.kind is MethodKind.FINETUNE:
            return f"finetune-{self.strategy}"
        return self.kind.value

    @property
    def order(self) -> tuple[int, str]:
        """Sort key: zero-shot, scratch, then fine-tuning by strategy name."""
        return list(MethodKind).index(self.kind), self.strategy or ""


class PointKind(enum.StrEnum):
    """What a point runs."""

    PRETRAIN = "pretrain"
    SCRATCH = "scratch"
    FINETUNE = "finetune"
    PHYSICS = "physics"


class Status(enum.StrEnum):
    """How a point ended: its training finished, or diverged (recorded, never selected)."""

    OK = "ok"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Point:
    """One run of a study: pre-training a preset, or one downstream (method, task, n, lr).

    ``n`` is the number of labelled examples: for a physics point, how many of the training
    inputs (all of them train) carry their solution; 0 is label-free.

    ``seed`` is the replicate: the seed of the model's initialisation, the data order and
    which ``n`` training examples are drawn. None is the study's own ``seed`` (its first n
    examples, and the directories of a study before seeds); another seed's directories end in
    ``-s<seed>``.

    ``kind`` may be given as its value (``Point("pretrain", "fno-64k")``, or
    ``Point(**point.to_dict())``).
    """

    kind: PointKind
    preset: str
    task: str = ""
    n: int = 0
    lr: float = 0.0
    strategy: str = "full"  # what fine-tuning uses; pre-training and scratch train all weights
    seed: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", PointKind(self.kind))

    @property
    def method(self) -> Method | None:
        """The downstream method this point runs; None for pre-training."""
        if self.kind is PointKind.PRETRAIN:
            return None
        if self.kind is PointKind.SCRATCH:
            return Method.scratch()
        if self.kind is PointKind.PHYSICS:
            return Method.physics()
        return Method.finetune(self.strategy)

    @property
    def directory(self) -> str:
        """The run directory, relative to the sweep directory."""
        replicate = "" if self.seed is None else f"-s{self.seed}"
        if self.method is None:
            return f"runs/pretrain/{self.preset}{replicate}"
        name = f"n{self.n:05d}-lr{self.lr:g}{replicate}"
        return f"runs/{self.preset}/{self.task}/{self.method.slug}/{name}"

    def describe(self) -> str:
        replicate = "" if self.seed is None else f" seed={self.seed}"
        if self.method is None:
            return f"pre-train {self.preset}{replicate}"
        return f"{self.preset} {self.task} {self.method.label} n={self.n} lr={self.lr:g}{replicate}"

    def to_dict(self) -> dict:
        """Plain JSON values (``kind`` as its string), as ``point.json`` and submitted jobs hold."""
        return {**dataclasses.asdict(self), "kind": self.kind.value}
