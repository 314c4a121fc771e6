"""A neural operator with its input normalisation: the object that is trained and saved."""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Float

from scifm._checks import UserError
from scifm.data import INPUT_NAMES, OUTPUT_NAMES
from scifm.models._normalizer import Normalizer


class OperatorModel(eqx.Module):
    """``u = net(normalizer(f, c))`` for one sample: input fields (C, H, W), coefficients (P,).

    The normaliser is fitted on the training set and is not trained; fine-tuning and evaluation
    reuse it, so a model sees every dataset scaled the way it was pre-trained. ``input_names``
    and ``output_names`` name the channels of ``f`` and of the output (``("f",)`` and ``("u",)``
    for the constant-coefficient systems, ``("f", "a")`` for Darcy); data of other channels is
    refused (:meth:`check_channels`) unless the model is adapted to them
    (:func:`scifm.models.adapt`).
    """

    normalizer: Normalizer
    net: eqx.Module
    input_names: tuple[str, ...] = eqx.field(static=True, default=INPUT_NAMES)
    output_names: tuple[str, ...] = eqx.field(static=True, default=OUTPUT_NAMES)

    def __call__(self, f: Float[Array, "c h w"], c: Float[Array, " p"]) -> Float[Array, "k h w"]:
        return self.net(self.normalizer(f, c))

    def check_channels(self, input_names, output_names, source: str) -> None:
        """Refuse data whose channels are not this model's, in one line naming both."""
        have = (tuple(input_names), tuple(output_names))
        want = (self.input_names, self.output_names)
        if have != want:
            raise UserError(
                f"{source} has channels {'+'.join(have[0])} -> {'+'.join(have[1])} but the model "
                f"takes {'+'.join(want[0])} -> {'+'.join(want[1])}; fine-tune it through an "
                "adapter (scifm train --init RUN --adapter) to change its channels"
            )
