"""The model a training run starts from: a fresh preset, or the weights of another run."""

from __future__ import annotations

import os

import jax

from scifm._checks import UserError
from scifm.data import FieldSet
from scifm.models import Normalizer, OperatorModel, adapt, get_preset
from scifm.train._checkpoint import check_compatible, load

DEFAULT_PRESET = "fno-1m"


def start_model(
    train: FieldSet,
    *,
    preset: str | None = None,
    init: str | os.PathLike | None = None,
    seed: int = 0,
    adapter: bool = False,
) -> tuple[OperatorModel, str]:
    """The initial model and its preset name.

    With ``init`` (a run directory or checkpoint), its weights *and* normaliser: a fine-tuned
    model sees inputs scaled as in pre-training; only the scale of a coefficient that the
    pre-training data never had (e.g. velocity after Poisson + Helmholtz) is fitted on
    ``train`` (:meth:`scifm.models.Normalizer.complete`). ``preset``, if also given, must match them.
    If ``train`` has other channels than the initial model (a coefficient field, other outputs),
    ``adapter=True`` carries the model to them (:func:`scifm.models.adapt`: new lift columns
    and output rows, Fourier layers kept; initialised from ``seed``); without it they are
    refused. Without ``init``, the ``preset`` (default fno-1m) initialised from ``seed``, with
    a normaliser fitted to ``train``.

    Raises:
        ValueError: unknown preset, ``init`` of another architecture than ``preset``, or of
            other channels than ``train`` without ``adapter``.
    """
    spec = get_preset(preset) if preset is not None else None
    in_channels = len(train.input_names) + train.coefficients.shape[1]
    out_channels = len(train.output_names)
    if init is not None:
        model, hyper = load(init)
        name = preset or hyper.get("preset", "custom")
        adapting = (model.input_names, model.output_names) != (
            train.input_names,
            train.output_names,
        )
        if adapting and not adapter:
            model.check_channels(train.input_names, train.output_names, train.name)
        check_compatible(  # an adapted model keeps its own channels until adapt changes them
            hyper,
            width=spec.width if spec else hyper["width"],
            modes=spec.modes if spec else hyper["modes"],
            in_channels=hyper["in_channels"] if adapting else in_channels,
            out_channels=hyper["out_channels"] if adapting else out_channels,
            source=f"the initial run {init}",
        )
        if adapting:
            return adapt(model, train, key=jax.random.key(seed)), name
        # terms the pre-training data never had take their input scale from this data
        model = OperatorModel(
            model.normalizer.complete(train), model.net, model.input_names, model.output_names
        )
        return model, name
    if adapter:
        raise UserError("an adapter carries a pre-trained model to new channels: it needs --init")
    spec = spec or get_preset(DEFAULT_PRESET)
    net = spec.build(in_channels, out_channels, key=jax.random.key(seed))
    model = OperatorModel(Normalizer.fit(train), net, train.input_names, train.output_names)
    return model, spec.name
