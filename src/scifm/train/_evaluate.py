"""Evaluation of an operator model: per-sample relative L2 errors and their summary."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from scifm._checks import UserError, check_count
from scifm.data import FieldSet
from scifm.models import OperatorModel
from scifm.train._losses import relative_l2_per_sample


@eqx.filter_jit
def _errors(model: OperatorModel, f, c, u):
    return relative_l2_per_sample(jax.vmap(model)(f, c), u)


def errors(model: OperatorModel, fields: FieldSet, batch_size: int = 32) -> np.ndarray:
    """Per-sample relative L2 errors of ``model`` on ``fields`` (batches padded to one shape).

    Raises:
        UserError: ``batch_size`` is not a positive integer, ``fields`` is empty, or an error
            is not finite (a zero target, or a non-finite output).
    """
    check_count("batch_size", batch_size)
    model.check_channels(fields.input_names, fields.output_names, fields.name or "the data")
    n = len(fields)
    if n == 0:
        raise UserError(f"{fields.name or 'the data'} holds no samples to evaluate")
    size = min(batch_size, n)
    out = np.empty(n)
    for lo in range(0, n, size):
        index = np.arange(lo, min(lo + size, n))
        padded = np.resize(index, size)  # repeat samples to keep the compiled shape
        f, c, u = fields.take(padded)
        out[index] = np.asarray(_errors(model, f, c, u))[: len(index)]
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise UserError(
            f"{fields.name or 'the data'}: the relative error of {bad.size} sample(s) is not "
            f"finite (first: sample {bad[0]}): a target that is zero everywhere, or a model "
            "whose output is not finite"
        )
    return out


def summarise(errs: np.ndarray) -> dict:
    """The metric: mean per-sample relative L2 error, and its spread."""
    return {
        "rel_l2_mean": float(np.mean(errs)),
        "rel_l2_std": float(np.std(errs)),
        "rel_l2_median": float(np.median(errs)),
        "rel_l2_p90": float(np.quantile(errs, 0.9)),
        "n": int(len(errs)),
    }


def evaluate(model: OperatorModel, fields: FieldSet, batch_size: int = 32) -> dict:
    """Mean per-sample relative L2 error on ``fields`` and its spread."""
    return summarise(errors(model, fields, batch_size))
