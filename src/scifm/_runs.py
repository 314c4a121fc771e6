"""The one run-directory layer: every long-running job of every pillar keeps its run here.

A run directory holds::

    config.json      the resolved configuration, scifm version and git revision
    metrics.jsonl    one JSON line per logged step or evaluation
    state.json       where the run stands (counters), naming the file beside it that holds
    state-<n>.eqx    the resumable state (weights, optimiser state, ...); saved atomically
    checkpoint.eqx   the model to use: the best by validation (or the last), + model.json
    result.json      written last: a directory without it holds an unfinished run
    *.png            plots, drawn by the caller

Opening a directory (:meth:`RunDirectory.open`) refuses a finished run, a directory of
something else and a run of another configuration (naming the keys and both values); it
writes nothing. The first :meth:`RunDirectory.save_state` (or :meth:`log`) creates the
directory and ``config.json``, so a run refused or failed before its first save leaves
nothing behind and its corrected rerun starts cleanly. A resumed run keeps only the metrics
rows its saved state has seen: a kill at any moment, rerun, ends with the same files as an
uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scifm import __version__
from scifm._checks import UserError
from scifm._io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_revision,
    parse_jsonl,
    write_jsonl,
)

CONFIG, METRICS, STATE, RESULT = "config.json", "metrics.jsonl", "state.json", "result.json"
WEIGHTS, MODEL = "checkpoint.eqx", "model.json"
# written by the layer itself: not part of what makes two configurations the same
PROVENANCE = ("scifm_version", "git_revision")


class RunError(UserError):
    """A run directory cannot be used as asked (another configuration, a foreign directory,
    a corrupt file). The message says what is wrong and what to do."""


class RunConflict(RunError):
    """The directory holds something else: a run of another configuration, or files that are
    not a run. Nothing is changed; the run needs another directory."""


class RunFinished(RunConflict):
    """The directory holds a finished run (its ``result.json`` exists); nothing is changed."""


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite. The run directory keeps its last saved state."""


def _normalise(config: dict) -> dict:
    """``config`` as it reads back from JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(config))


def _describe(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value)


_ABSENT = object()


def config_difference(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` for every key on which two configurations differ (provenance aside)."""
    keys = sorted((set(old) | set(new)) - set(PROVENANCE))
    return [
        f"{k}: {_describe(old.get(k, _ABSENT))} -> {_describe(new.get(k, _ABSENT))}"
        for k in keys
        if old.get(k, _ABSENT) != new.get(k, _ABSENT)
    ]


def read_json(path: Path, todo: str) -> dict:
    """The JSON object in ``path``, a file of a run or a sweep; anything else is a
    :class:`RunError` that says ``todo`` (what to do about it)."""
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunError(f"{path} is not valid JSON (a corrupt file); {todo}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} does not hold a JSON object (a corrupt file); {todo}")
    return value


class RunDirectory:
    """A run directory (see the module docstring). Make one with :meth:`open`."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = config

    @classmethod
    def open(cls, path: str | os.PathLike, config: dict) -> RunDirectory:
        """Check that ``path`` can hold the run ``config`` (fresh, or unfinished and the same).

        Writes nothing: the directory and ``config.json`` are created by the first save.

        Raises:
            RunFinished: ``path`` holds a finished run.
            RunConflict: ``path`` holds a run of another configuration, is a non-empty
                directory of something else, or is a file.
            RunError: ``path`` holds a corrupt ``config.json``.
        """
        path = Path(path)
        config = _normalise(config)
        if path.exists() and not path.is_dir():
            raise RunConflict(f"{path} is a file, not a run directory")
        if (path / CONFIG).exists():
            old = read_json(path / CONFIG, _start_over(path))
            difference = config_difference(old, config)
            if difference:
                state = "a finished" if (path / RESULT).exists() else "an unfinished"
                raise RunConflict(
                    f"{path} holds {state} run of another configuration ({'; '.join(difference)})"
                )
            if (path / RESULT).exists():
                raise RunFinished(f"{path} holds a finished run of this configuration")
        elif path.exists() and any(path.iterdir()):
            raise RunConflict(f"{path} exists and is not a scifm run directory")
        return cls(path, config)

    # --- files ---

    def _create(self) -> None:
        """Make the directory and ``config.json`` (with provenance) if they do not exist yet."""
        if (self.path / CONFIG).exists():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        provenance = {"scifm_version": __version__, "git_revision": git_revision()}
        atomic_write_json(self.path / CONFIG, {**self.config, **provenance})

    def metrics(self) -> list[dict]:
        """The rows of ``metrics.jsonl`` (a torn last line, left by a kill, is dropped).

        Raises:
            RunError: a line before the last is not JSON.
        """
        path = self.path / METRICS
        if not path.exists():
            return []
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        try:
            return parse_jsonl(lines, path)
        except UserError:
            try:  # a line torn by a kill can only be the last one
                return parse_jsonl(lines[:-1], path)
            except UserError as e:
                raise RunError(f"{e}; {_start_over(self.path)}") from None

    def log(self, row: dict) -> None:
        """Append one row to ``metrics.jsonl`` (and flush it, for whoever watches the run)."""
        self._create()
        with open(self.path / METRICS, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def save_state(self, tree: Any, counters: dict, *, step: int) -> None:
        """Save the resumable state so that a kill at any moment leaves a consistent pair.

        ``tree`` (weights, optimiser state, ...) goes to a new ``state-<step>.eqx``; then
        ``state.json`` (``counters`` plus that file's name) replaces the old one atomically;
        only then is the previous state file removed. ``step`` must grow with every save.
        """
        import equinox as eqx  # here, so that ``import scifm`` does not import JAX

        self._create()
        name = f"state-{step}.eqx"
        atomic_write_bytes(self.path / name, lambda fh: eqx.tree_serialise_leaves(fh, tree))
        # counters may hold infinity (no best yet): Python's JSON reads it back
        atomic_write_text(self.path / STATE, json.dumps({**counters, "weights": name}))
        for old in self.path.glob("state-*.eqx"):
            if old.name != name:
                old.unlink()

    def load_state(self, like: Any) -> tuple[Any, dict] | None:
        """The saved ``(tree, counters)`` (``like`` gives the tree's structure), or None.

        Raises:
            RunError: ``state.json`` or the state file it names is corrupt or missing.
        """
        import equinox as eqx

        path = self.path / STATE
        if not path.exists():
            return None
        counters = read_json(path, _start_over(self.path))
        weights = self.path / str(counters.pop("weights", ""))
        if not weights.is_file():
            raise RunError(
                f"{path} names the state file {weights.name}, which is missing; "
                f"{_start_over(self.path)}"
            )
        try:
            tree = eqx.tree_deserialise_leaves(weights, like)
        except Exception as e:  # noqa: BLE001 - any failure means the file does not match
            raise RunError(
                f"{weights} is corrupt or truncated ({type(e).__name__}); {_start_over(self.path)}"
            ) from None
        return tree, counters

    def keep_metrics(self, keep: Callable[[dict], bool]) -> list[dict]:
        """Drop the metrics rows for which ``keep`` is false (work a resumed run will redo)."""
        rows = [r for r in self.metrics() if keep(r)]
        if (self.path / METRICS).exists():
            write_jsonl(self.path / METRICS, rows)
        return rows

    def save_model(self, model: Any, description: dict) -> None:
        """Write ``checkpoint.eqx`` (the weights) and ``model.json`` (``description``, what is
        needed to rebuild the model's structure), each atomically."""
        import equinox as eqx

        self._create()
        atomic_write_json(self.path / MODEL, description)
        atomic_write_bytes(self.path / WEIGHTS, lambda fh: eqx.tree_serialise_leaves(fh, model))

    def write_result(self, result: dict) -> dict:
        """Write ``result.json``, last: from now on the run is finished. Non-finite numbers are
        stored as null (strict JSON)."""
        self._create()
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in result.items()
        }
        atomic_write_json(self.path / RESULT, clean)
        return result


def open_study_directory(
    out: str | os.PathLike, table: dict, *, what: str, extensible: Sequence[str] = (),
    saved_name: str = "study.json",
) -> Path:  # fmt: skip
    """Create or reopen the directory ``out`` of a study whose settings are ``table`` (saved as
    ``saved_name``). A saved study may differ only in ``extensible`` keys (dotted for nested
    tables: ``walk_forward.variants``; a table's name covers all its keys); it is then replaced
    by ``table`` (finished runs are kept, new ones run).

    Raises:
        RunConflict: ``out`` is a file, a non-empty directory of something else, or holds a
            study that differs in another key (each difference named); nothing is written.
        RunError: a corrupt saved study.
    """
    out = Path(out)
    saved = out / saved_name
    if out.exists() and not out.is_dir():
        raise RunConflict(f"{out} is a file, not a study directory")
    if saved.exists():
        old, new = _dotted(read_json(saved, f"restore it or delete {out} to start over")), _dotted(table)
        free = lambda k: any(k == e or k.startswith(e + ".") for e in extensible)  # noqa: E731
        fixed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and not free(k))
        if fixed:
            pick = lambda d: {k: d.get(k) for k in fixed}  # noqa: E731
            raise RunConflict(
                f"{out} holds another {what} ({'; '.join(config_difference(pick(old), pick(new)))})"
            )
        if old != new:
            atomic_write_json(saved, table)
    elif out.exists() and any(out.iterdir()):
        raise RunConflict(f"{out} exists and is not a scifm {what}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(saved, table)
    return out


def _dotted(table: dict, prefix: str = "") -> dict:
    """``table`` with nested tables' keys joined by dots (an empty table stays a value)."""
    out = {}
    for k, v in table.items():
        if isinstance(v, dict) and v:
            out |= _dotted(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def _start_over(run: Path) -> str:
    return f"delete the run directory {run} to start over"
