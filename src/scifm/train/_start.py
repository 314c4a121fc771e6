"""The model a training run starts from: a fresh preset, or the weights of another run."""

from __future__ import annotations

import os

import jax

from scifm.data import FieldSet
from scifm.models import Normalizer, OperatorModel, get_preset
from scifm.train._checkpoint import check_compatible, load

DEFAULT_PRESET = "fno-1m"


def start_model(
    train: FieldSet,
    *,
    preset: str | None = None,
    init: str | os.PathLike | None = None,
    seed: int = 0,
) -> tuple[OperatorModel, str]:
    """The initial model and its preset name.

    With ``init`` (a run directory or checkpoint), its weights *and* normaliser: a fine-tuned
    model sees inputs scaled as in pre-training; only the scale of a coefficient that the
    pre-training data never had (e.g. velocity after Poisson + Helmholtz) is fitted on
    ``train`` (:meth:`scifm.models.Normalizer.complete`). ``preset``, if also given, must match them.
    Without, the ``preset`` (default fno-1m) initialised from ``seed``, with a normaliser fitted
    to ``train``.

    Raises:
        ValueError: unknown preset, or ``init`` of another architecture than ``preset`` or than
            ``train``'s channels.
    """
    spec = get_preset(preset) if preset is not None else None
    in_channels = 1 + train.coefficients.shape[1]
    if init is not None:
        model, hyper = load(init)
        check_compatible(
            hyper,
            width=spec.width if spec else hyper["width"],
            modes=spec.modes if spec else hyper["modes"],
            in_channels=in_channels,
            out_channels=1,
            source=f"the initial run {init}",
        )
        # terms the pre-training data never had take their input scale from this data
        model = OperatorModel(model.normalizer.complete(train), model.net)
        return model, preset or hyper.get("preset", "custom")
    spec = spec or get_preset(DEFAULT_PRESET)
    net = spec.build(in_channels, 1, key=jax.random.key(seed))
    return OperatorModel(Normalizer.fit(train), net), spec.name
