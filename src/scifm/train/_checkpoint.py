"""Operator checkpoints: weights by ``eqx.tree_serialise_leaves``, hyper-parameters as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from scifm import __version__
from scifm._checks import UserError
from scifm._io import atomic_write_bytes, atomic_write_json
from scifm._runs import MODEL as HYPER
from scifm._runs import WEIGHTS
from scifm.data import INPUT_NAMES, OUTPUT_NAMES
from scifm.models import FNO, Normalizer, OperatorModel, resolve_init


def hyperparameters(model: OperatorModel, **extra: Any) -> dict:
    """What is needed to rebuild ``model``'s structure (stored as model.json)."""
    net = model.net
    if not isinstance(net, FNO):
        raise TypeError(f"only FNO checkpoints are supported, got {type(net).__name__}")
    return {
        "kind": "fno",
        "in_channels": net.in_channels,
        "out_channels": net.out_channels,
        "width": net.width,
        "modes": net.modes,
        "layers": len(net.spectral),
        "grid": net.grid,
        "coefficients": int(model.normalizer.coefficient_scale.shape[0]),
        "input_names": list(model.input_names),
        "output_names": list(model.output_names),
        "source": model.normalizer.source,
        "dtype": str(net.lift.weight.dtype),
        "scifm_version": __version__,
        **extra,
    }


def skeleton(hyper: dict) -> OperatorModel:
    """A model with the structure described by ``hyper`` (weights to be loaded)."""
    net = FNO(
        hyper["in_channels"],
        hyper["out_channels"],
        hyper["width"],
        hyper["modes"],
        layers=hyper["layers"],
        grid=hyper["grid"],
        key=jax.random.key(0),
    )
    p = hyper["coefficients"]
    inputs = tuple(hyper.get("input_names", INPUT_NAMES))  # absent: a model of before field inputs
    outputs = tuple(hyper.get("output_names", OUTPUT_NAMES))
    source = bool(hyper.get("source", True))
    fields = len(inputs) - source
    normalizer = Normalizer(
        jnp.zeros((), jnp.float32),
        jnp.zeros((p,), jnp.float32),
        jnp.zeros((fields,), jnp.float32) if fields else None,
        source=source,
    )
    dtype = jnp.dtype(hyper.get("dtype", "float32"))
    net = jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, net)
    return OperatorModel(normalizer, net, inputs, outputs)


def save(directory: Path, model: OperatorModel, name: str = WEIGHTS, **extra: Any) -> None:
    """Write ``directory/name`` (weights) and ``directory/model.json`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / HYPER, hyperparameters(model, **extra))
    atomic_write_bytes(directory / name, lambda f: eqx.tree_serialise_leaves(f, model))


def load(path: str | os.PathLike) -> tuple[OperatorModel, dict]:
    """Load a model from a run directory, a ``checkpoint.eqx`` beside its ``model.json``, or
    a shipped pre-trained model, ``"pretrained:NAME"`` (see ``scifm models``).

    Raises:
        FileNotFoundError: no checkpoint or model.json there.
        ValueError: model.json unreadable, or weights that do not match it (corrupt file,
            other architecture); no shipped model of that name.
    """
    path = Path(resolve_init(path))
    weights = path / WEIGHTS if path.is_dir() else path
    hyper_path = weights.parent / HYPER
    if not weights.exists():
        raise FileNotFoundError(f"no checkpoint at {weights}")
    if not hyper_path.exists():
        raise FileNotFoundError(f"no {HYPER} beside {weights}")
    try:
        hyper = json.loads(hyper_path.read_text())
        model = skeleton(hyper)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{hyper_path} is not a valid scifm model description ({e})") from None
    try:
        model = eqx.tree_deserialise_leaves(weights, model)
    except Exception as e:  # noqa: BLE001 - any failure means the file does not match
        raise UserError(
            f"{weights} is corrupt or does not match {hyper_path} "
            f"(width {hyper['width']}, modes {hyper['modes']}, {hyper['in_channels']} input channels): "
            f"{type(e).__name__}"
        ) from None
    return model, hyper


def check_compatible(
    hyper: dict, *, width: int, modes: int, in_channels: int, out_channels: int, source: str
) -> None:
    """Refuse to start from weights of another architecture, naming the difference."""
    want = {
        "width": width,
        "modes": modes,
        "in_channels": in_channels,
        "out_channels": out_channels,
    }
    diff = [f"{k} {hyper[k]} vs {v}" for k, v in want.items() if hyper.get(k) != v]
    if diff:
        preset = f" (preset {hyper['preset']})" if "preset" in hyper else ""
        raise UserError(f"{source}{preset} does not match the requested model: {', '.join(diff)}")
