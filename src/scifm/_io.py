"""Small shared helpers for every package: atomic writes, figures, JSON lines, the git revision.

Private to scifm (a top-level module meant for sharing, as ``equinox.internal`` is): every
package imports these from here, none keeps a copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scifm._checks import UserError

if TYPE_CHECKING:  # matplotlib is imported only by the code that draws
    from matplotlib.figure import Figure


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The temporary file is hidden (``.NAME.XXXX.tmp``), flushed to disk before the rename, and
    removed if ``write`` raises (or the process is interrupted inside it), so ``path`` is
    either its old contents or the complete new ones, never a half-written file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give the name of a file to write")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; files get the usual mode
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON (no bare NaN or Infinity) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def parse_jsonl(lines: Iterable[str], path: str | os.PathLike) -> list[dict]:
    """The JSON objects of ``lines`` (read from ``path``; blank lines skipped).

    Raises:
        UserError: a line is not JSON (names the file and the line).
    """
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise UserError(f"{path} line {number} is not JSON (a corrupt file)") from None
    return rows


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSON-lines file (see :func:`parse_jsonl`); an absent file has none."""
    path = Path(path)
    return parse_jsonl(path.read_text().splitlines(), path) if path.exists() else []


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Replace ``path`` by ``rows``, one JSON object a line, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def figure(*, figsize: tuple[float, float] = (6, 4), **kwargs: Any) -> Figure:
    """A matplotlib figure that belongs to no pyplot state and needs no backend switch.

    Library code draws on it and saves it with :func:`save_figure`; a notebook's backend and
    its open figures are untouched (``matplotlib.use`` is never called).
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, **kwargs)


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically."""
    return atomic_write_bytes(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def git_revision() -> str | None:
    """The short git revision of the scifm source tree, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
