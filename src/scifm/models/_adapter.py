"""Adapting a trained operator to data of other channels: new lift and projection columns.

A pre-trained FNO reads ``(fields, coefficients)`` through its lift, a pointwise linear map from
the input channels to ``width``; everything after it (the Fourier layers, the skips, the first
projection layer) works on ``width`` channels and does not know what the inputs were. So a model
can be carried to data with other input fields (a coefficient field ``a`` beside the source) by
changing the lift alone, and to other outputs by changing the last projection alone:

- **lift**: the columns of input channels the model already reads (matched by name, e.g. ``f``,
  ``k11`` ... ``omega``) are copied; a new channel's column starts at **zero**, so the adapted
  model computes exactly what the pre-trained one did on the shared channels (its zero-shot
  prediction) and fine-tuning grows the new channel's use from there; channels the data lacks
  are dropped. The lift's bias is kept.
- **output projection**: rows of outputs the model already predicts are copied; a new output's
  row is initialised afresh (PyTorch's default, from the run's seed), its bias too.
- **normaliser**: the scales of the shared channels are kept, those of new fields fitted on the
  fine-tuning data (as :meth:`~scifm.models.Normalizer.complete` does for unseen coefficients).
  If the data has no source ``f`` and the model had one (or the reverse), the normaliser is
  fitted afresh: the per-sample scaling has nothing to carry over.

Nothing else changes: Fourier layers, skips and the hidden projection are the pre-trained ones.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from scifm.data import FieldSet
from scifm.models._fno import FNO
from scifm.models._normalizer import Normalizer
from scifm.models._operator import OperatorModel
from scifm.pdes import COEFFICIENT_NAMES


def _take(old: jnp.ndarray, old_names, new_names, fill: jnp.ndarray, axis: int) -> jnp.ndarray:
    """``old`` re-indexed along ``axis`` from ``old_names`` to ``new_names``; new ones ``fill``."""
    parts = []
    for name in new_names:
        source = old if name in old_names else fill
        index = list(old_names).index(name) if name in old_names else list(new_names).index(name)
        parts.append(jnp.take(source, index, axis=axis))
    return jnp.stack(parts, axis=axis)


def adapter_changes(input_names, output_names, fields: FieldSet) -> dict:
    """What adapting a model of these channels to ``fields`` changes, JSON-able.

    ``new_inputs`` get zero lift columns, ``dropped_inputs`` lose theirs, ``new_outputs`` get
    freshly initialised projection rows; the ``kept_*`` ones keep their weights.
    """
    old_in, new_in = (*input_names, *COEFFICIENT_NAMES), (*fields.input_names, *COEFFICIENT_NAMES)
    old_out, new_out = tuple(output_names), fields.output_names
    return {
        "kept_inputs": [c for c in new_in if c in old_in],
        "new_inputs": [c for c in new_in if c not in old_in],
        "dropped_inputs": [c for c in old_in if c not in new_in],
        "kept_outputs": [c for c in new_out if c in old_out],
        "new_outputs": [c for c in new_out if c not in old_out],
    }


def adapt(model: OperatorModel, fields: FieldSet, *, key) -> OperatorModel:
    """``model`` carried to the channels of ``fields`` (see the module docstring)."""
    net = model.net
    if not isinstance(net, FNO):
        raise TypeError(f"only FNO models can be adapted, got {type(net).__name__}")
    old_in = (*model.input_names, *COEFFICIENT_NAMES)
    new_in = (*fields.input_names, *COEFFICIENT_NAMES)
    grid = ("grid x", "grid y") if net.grid else ()
    old_out, new_out = model.output_names, fields.output_names
    fresh = FNO(
        len(new_in),
        len(new_out),
        net.width,
        net.modes,
        layers=len(net.spectral),
        grid=net.grid,
        key=key,
    )
    lift = _take(
        net.lift.weight, old_in + grid, new_in + grid, jnp.zeros_like(fresh.lift.weight), axis=1
    )
    out_w = _take(net.project_out.weight, old_out, new_out, fresh.project_out.weight, axis=0)
    out_b = _take(net.project_out.bias, old_out, new_out, fresh.project_out.bias, axis=0)
    adapted = eqx.tree_at(
        lambda m: (m.lift.bias, m.spectral, m.skip, m.project_hidden),
        fresh,
        (net.lift.bias, net.spectral, net.skip, net.project_hidden),
    )
    adapted = eqx.tree_at(
        lambda m: (m.lift.weight, m.project_out.weight, m.project_out.bias),
        adapted,
        (lift.astype(net.lift.weight.dtype), out_w, out_b),
    )
    return OperatorModel(_adapt_normaliser(model, fields), adapted, fields.input_names, new_out)


def _adapt_normaliser(model: OperatorModel, fields: FieldSet) -> Normalizer:
    old = model.normalizer
    fitted = Normalizer.fit(fields)
    if fitted.source != old.source:
        return fitted  # the per-sample scaling has nothing to carry over
    coefficients = np.asarray(old.coefficient_scale, np.float64)
    coefficients = np.where(np.isnan(coefficients), fitted.coefficient_scale, coefficients)
    offset = 1 if old.source else 0
    old_fields = model.input_names[offset:]
    old_scale = () if old.field_scale is None else np.asarray(old.field_scale, np.float64)
    new_fields = fields.input_names[offset:]
    scale = [
        old_scale[old_fields.index(name)]
        if name in old_fields and not np.isnan(old_scale[old_fields.index(name)])
        else float(fitted.field_scale[j])
        for j, name in enumerate(new_fields)
    ]
    return Normalizer(
        old.source_scale, coefficients, np.asarray(scale) if scale else None, source=old.source
    )
