"""Argument checks shared by every library function a command calls: counts, rates, lists.

One wording everywhere (``batch_size must be an integer >= 1, got 0``), so a refusal reads
the same whichever command made it. Each raises ``UserError`` (a ``ValueError``), which the
CLI prints as one line with exit status 2. Standard library only (``numbers`` covers NumPy's
scalars), so ``import scifm`` and ``scifm --help`` do not load NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any


class UserError(ValueError):
    """A value a user gave (an argument, an option, a file's contents) that scifm refuses.

    Every deliberate refusal in scifm raises this (or an ``OSError`` for paths); the CLI prints
    it as one line with exit status 2. Any other exception is a bug and keeps its traceback.
    """


class OutputExists(FileExistsError):
    """The output file exists and replacing it was not asked for (``overwrite=True``)."""

    def __init__(self, path):
        super().__init__(f"{path} exists; pass overwrite=True to replace it")
        self.path = path


def check_count(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``minimum`` (``bool`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0 (NaN is refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise UserError(f"{name} must be a finite number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0 (NaN is refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise UserError(f"{name} must be a finite number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise UserError(f"{name} must be a finite number >= 0, got {value!r}")


def check_counts(name: str, values: Iterable[Any]) -> tuple:
    """Raise ``ValueError`` unless ``values`` is a non-empty sequence of integers >= 1."""
    values = check_nonempty(name, values)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise UserError(f"{name} must be integers >= 1, got {v!r} in {values!r}")
    return values


def check_nonempty(name: str, values: Iterable[Any]) -> tuple:
    """Raise ``ValueError`` if ``values`` is empty; returns it as a tuple."""
    values = tuple(values)
    if not values:
        raise UserError(f"{name} must list at least one value, got none")
    return values
