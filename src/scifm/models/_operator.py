"""A neural operator with its input normalisation: the object that is trained and saved."""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Float

from scifm.models._normalizer import Normalizer


class OperatorModel(eqx.Module):
    """``u = net(normalizer(f, c))`` for one sample: source (1, H, W), coefficients (P,).

    The normaliser is fitted on the training set and is not trained; fine-tuning and evaluation
    reuse it, so a model sees every dataset scaled the way it was pre-trained.
    """

    normalizer: Normalizer
    net: eqx.Module

    def __call__(self, f: Float[Array, "1 h w"], c: Float[Array, " p"]) -> Float[Array, "1 h w"]:
        return self.net(self.normalizer(f, c))
