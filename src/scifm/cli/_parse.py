"""Parsing of CLI-only option values (``LO,HI`` ranges, comma-separated lists, numbers).

Each parser raises a one-line ``ValueError`` naming the option, which `scifm.cli.main`
prints as ``scifm: error: ...`` with exit status 2. Counts are declared with Typer's
``min=1`` and rates with the parsers :func:`positive`/:func:`non_negative`, so a bad value is refused as
the command line is parsed, before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from scifm._checks import UserError, check_non_negative, check_positive


def parse_range(option: str, text: str | None) -> tuple[float, float] | None:
    """Parse ``LO,HI`` into two floats; one line of error otherwise."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(
            f"{option} takes LO,HI (two numbers separated by a comma), got {text!r}"
        ) from None


def _integer(text: str) -> int:
    """An integer written plainly or in float notation (``100000`` or ``1e5``), never truncated."""
    value = float(text)
    if not value.is_integer():
        raise UserError(text)
    return int(value)


def parse_list(option: str, text: str, cast: Callable = str) -> tuple:
    """Parse a comma-separated list (items stripped, empty items skipped), each through ``cast``.

    ``cast=int`` also accepts float notation for whole numbers (``1e5``).
    """
    convert = _integer if cast is int else cast
    try:
        return tuple(convert(v.strip()) for v in text.split(",") if v.strip())
    except (ValueError, OverflowError):
        raise UserError(f"{option} takes a comma-separated list, got {text!r}") from None


def _number(value, check: Callable[[str, float], None]) -> float:
    """``value`` as a float that passes ``check`` (one of :mod:`scifm._checks`, which also
    refuses NaN), else a usage error naming the option."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a number") from None
    try:
        check("the value", number)
    except UserError as e:
        raise typer.BadParameter(str(e)) from None
    return number


def positive(value) -> float:
    """Option parser: a finite number > 0 (learning rates)."""
    return _number(value, check_positive)


def non_negative(value) -> float:
    """Option parser: a finite number >= 0 (seconds between saves; 0: every step)."""
    return _number(value, check_non_negative)
