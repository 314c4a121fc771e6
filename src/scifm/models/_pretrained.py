"""Pre-trained operators shipped inside the package: ``pretrained:NAME`` wherever a run is taken.

Each lives in ``scifm/models/pretrained/<NAME>/`` as a run directory holds it
(``checkpoint.eqx`` and ``model.json``, read by :func:`scifm.train.load`) with its model card,
``card.md`` for people and ``card.json`` for programs (data, steps, test errors per task and
resolution, what it saves a user, the sha256 of its weights). They travel in the wheel:
nothing is downloaded. ``scifm models`` lists them; ``scifm.experiments.pack_pretrained``
makes one from the sweep of the shipped study that trains it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from scifm._checks import UserError

PREFIX = "pretrained:"


def _folder() -> Path:
    return Path(str(resources.files("scifm.models") / "pretrained"))


@dataclass(frozen=True)
class Pretrained:
    """A shipped model: its name, folder and card (``card.json`` as a dict)."""

    name: str
    path: Path
    card: dict

    @property
    def reference(self) -> str:
        """How commands take it: ``pretrained:NAME``."""
        return f"{PREFIX}{self.name}"


def pretrained_models() -> list[Pretrained]:
    """The shipped models, by name."""
    folder = _folder()
    out = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        card = path / "card.json"
        if path.is_dir() and card.exists() and (path / "checkpoint.eqx").exists():
            out.append(Pretrained(path.name, path, json.loads(card.read_text())))
    return out


def get_pretrained(name: str) -> Pretrained:
    """The shipped model ``name``; a name that is not one is refused in one line."""
    models = pretrained_models()
    for model in models:
        if model.name == name:
            return model
    shipped = ", ".join(m.reference for m in models) or "none in this installation"
    raise UserError(f"no pre-trained model {name!r}; shipped: {shipped} (see `scifm models`)")


def resolve_init(init: str | os.PathLike) -> str | os.PathLike:
    """``pretrained:NAME`` as the folder of that shipped model; any other path unchanged."""
    text = os.fspath(init)
    if isinstance(text, str) and text.startswith(PREFIX):
        return str(get_pretrained(text[len(PREFIX) :]).path)
    return init
