"""Fine-tuning strategies: which parameters move, and how, when training starts from weights.

A strategy wraps the base optimizer (Adam scaled by the learning rate) into another Optax
transformation. Its ``init`` sees the parameters training starts from, so a strategy that needs
the pre-trained weights (to hold some fixed, or to pull back towards them) keeps them in its
optimizer state: nothing else in the training loop knows which strategy runs. Strategies are
frozen dataclasses, hashable, so one compiled training step serves every run that uses the same
one. Names exist only at the CLI/config boundary (:func:`get_strategy`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import optax


class AbstractStrategy(ABC):
    """How fine-tuning updates the parameters; see the module docstring."""

    name: ClassVar[str]

    @abstractmethod
    def wrap(self, inner: optax.GradientTransformation) -> optax.GradientTransformation:
        """The optimizer of this strategy around ``inner`` (Adam with the learning rate applied)."""


@dataclass(frozen=True)
class Full(AbstractStrategy):
    """Every parameter trains (the reference study's fine-tuning, and training from scratch)."""

    name: ClassVar[str] = "full"

    def wrap(self, inner):
        return inner


STRATEGIES: dict[str, type[AbstractStrategy]] = {cls.name: cls for cls in (Full,)}


def get_strategy(name: str, **options) -> AbstractStrategy:
    """The strategy registered under ``name``; unknown names list the valid ones."""
    if name not in STRATEGIES:
        raise ValueError(
            f"unknown fine-tuning strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}"
        )
    return STRATEGIES[name](**options)
