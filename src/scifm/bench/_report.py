"""How benchmark results leave the process: tables of formatted numbers and the JSON file.

Every benchmark module renders its own results into a :class:`Table` with the formatters
here (one set for all: milliseconds, seconds, MiB, ratios, rates); the CLI only prints it.

Results files are never clobbered: :func:`check_output` refuses an unusable or existing path
before any measuring starts, and :func:`write_json` writes atomically and, unless told to
overwrite, refuses a file that appeared while measuring (keeping the results beside it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from scifm._checks import OutputExists, UserError
from scifm._io import atomic_write_json


class Table(NamedTuple):
    """A benchmark's results as text: column names, rows of cells, an optional title."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    title: str | None = None


def seconds(s: float, digits: int = 3) -> str:
    """``0.457``: a time in seconds."""
    return f"{s:.{digits}f}"


def ms(s: float) -> str:
    """``12.3``: a time given in seconds, shown in milliseconds."""
    return f"{1e3 * s:.1f}"


def mib(value: float | None) -> str:
    """``316``: a memory size already in MiB; ``-`` when unknown (None or 0)."""
    return f"{value:.0f}" if value else "-"


def ratio(x: float | None, digits: int = 2) -> str:
    """``1.26``: a ratio of two quantities measured in the same run; ``-`` when unknown."""
    return "-" if x is None else f"{x:.{digits}f}"


def rate(x: float, digits: int = 1) -> str:
    """``1,234.5``: items per second."""
    return f"{x:,.{digits}f}"


def count(n: int) -> str:
    """``67,329``: an integer with thousands separators."""
    return f"{n:,}"


def default_output(benchmark: str) -> Path:
    """``bench-<benchmark>-<YYYYmmdd-HHMMSS>.json`` in the current directory.

    A fresh name per run, so a run without ``--out`` never replaces earlier results (the
    tracked ones under ``benchmarks/results/`` are written only when named explicitly).
    """
    return Path(f"bench-{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json")


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check, before measuring, that the JSON results can be written to ``path``.

    Raises:
        IsADirectoryError: ``path`` is a directory.
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        FileNotFoundError: its directory does not exist (it is not created).
        PermissionError: no file can be created in its directory.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; the output must be a file name")
    if path.exists() and not overwrite:
        raise OutputExists(path)
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as e:
        raise PermissionError(f"cannot write in {parent}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def write_json(result: dict, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``result`` to ``path`` as strict JSON, atomically (complete or not at all).

    With ``overwrite`` an existing file is replaced. Without it the file is created only if
    absent at the moment of writing (a hard link of the finished temporary file, which
    cannot replace anything); if ``path`` appeared while measuring, the results are kept
    under a new name beside it and ``FileExistsError`` names both.
    """
    path = Path(path)
    if overwrite:
        return atomic_write_json(path, result)
    staged = atomic_write_json(path.with_name(f".{path.name}.{os.getpid()}.new"), result)
    try:
        try:
            os.link(staged, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system: check, then rename
            if path.exists():
                raise FileExistsError(path) from None
            os.replace(staged, path)
    except FileExistsError:
        fd, kept = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}-", suffix=path.suffix)
        os.close(fd)
        os.replace(staged, kept)
        raise FileExistsError(
            f"{path} appeared while measuring; the results were written to {kept}"
        ) from None
    staged.unlink(missing_ok=True)
    return path


def run_script(check: Callable[[], object], measure: Callable[[object], dict], out, overwrite) -> int:
    """A benchmark script's main: ``check()`` its arguments and ``out`` before measuring, then
    ``measure(check())``, write the JSON atomically (:func:`write_json`) and say where.

    Returns the exit status: 0, or 2 after one line on stderr for a refusal (``UserError``,
    ``OSError``) before or after measuring.
    """
    try:
        checked = check()
        path = check_output(out, overwrite=overwrite)
        write_json(measure(checked), path, overwrite=overwrite)
    except (UserError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
