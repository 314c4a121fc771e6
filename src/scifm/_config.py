"""Typed configuration files, shared by every pillar's studies (transfer, federated, ...).

A configuration is a frozen dataclass read from TOML. A file may start from another with
``base = "NAME or path"``: the base is read first and the file's keys override it, table by
table; command-line overrides (``--set key.sub=value``, TOML values) apply last. Keys are typed
strictly: an unknown key names the valid ones, a value of the wrong type names the key. A class
whose TOML table is not its fields one to one (a task's options sit beside its ``system``)
defines ``from_table(data) -> dict`` to map the table to its fields first.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scifm._checks import UserError
from scifm._runs import read_json


def build(cls, data, where: str = ""):
    """``cls(**data)``, strictly typed; errors name the key and the valid keys."""
    if not isinstance(data, dict):
        raise UserError(f"{where.rstrip('.') or 'the configuration'} must be a table, got {data!r}")
    if hasattr(cls, "from_table"):
        data = cls.from_table(data, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown key '{where}{unknown[0]}'; valid keys: {', '.join(fields)}")
    missing = [
        n
        for n, f in fields.items()
        if n not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"missing key '{where}{missing[0]}'")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v, f"{where}{k}") for k, v in data.items()})


def _coerce(kind, value, where: str):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return build(kind, value, where + ".")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a table, got {value!r}")
        return {k: _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool) and type(value) is kind:
        return value
    raise UserError(f"{where} must be {kind.__name__}, got {value!r}")


def plain(value):
    """``value`` with tuples as lists (as it reads back from JSON)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def shipped_names(configs: Path) -> list[str]:
    """The names of the shipped files (``NAME.toml``) in the folder ``configs``."""
    return sorted(p.name[:-5] for p in configs.iterdir() if p.name.endswith(".toml"))


def read_toml(source: str | Path, configs: Path, what: str, seen: tuple = ()) -> dict:
    """The table of a TOML file with its ``base`` chain merged in.

    ``source`` is a ``.toml`` path or the name of a file shipped in the folder ``configs``;
    ``what`` names the kind of file in errors ("study", ...).
    """
    path = Path(source)
    if path.suffix != ".toml" or not path.exists():
        names = shipped_names(configs)
        if str(source) not in names:
            raise UserError(
                f"no {what} file {source}; give a .toml path or one of: {', '.join(names)}"
            )
        path = configs / f"{source}.toml"
    if path.resolve() in seen:
        raise UserError(f"{path}: circular 'base'")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML: {e}") from None
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise UserError(f"{path}: base must be a {what} name or path, got {base!r}")
    candidate = path.parent / base
    base_source = candidate if candidate.suffix == ".toml" and candidate.exists() else base
    return merge(read_toml(base_source, configs, what, (*seen, path.resolve())), data)


def merge(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s keys replacing its own, tables merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"pretrain.epochs=5"`` -> (["pretrain", "epochs"], 5); values are TOML (bare words: strings)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override must look like key.sub=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip().split("."), parsed


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """``data`` with each ``key.sub=value`` of ``overrides`` set, in order (in place)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"override {text!r}: {k} is not a table")
        node[keys[-1]] = value
    return data


def read_json_config(path: Path, what: str) -> dict:
    """The table saved as JSON by a study (``study.json``); a corrupt file is refused in one
    line (:func:`scifm._runs.read_json`)."""
    return read_json(path, f"restore it or delete it to reload the {what}")
