"""The input normalisation of an operator model, fitted on its training set."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from scifm.data import FieldSet


def _rms(f: Float[Array, "*batch h w"]) -> Float[Array, "*batch"]:
    return jnp.sqrt(jnp.mean(f**2, axis=(-2, -1)))


def _nonzero_medians(coefficients: np.ndarray) -> np.ndarray:
    """Median of the non-zero ``|c_j|`` per column; NaN for a column that is all zero."""
    out = np.full(coefficients.shape[1], np.nan)
    for j, column in enumerate(np.abs(coefficients).T):
        if (column > 0).any():
            out[j] = np.median(column[column > 0])
    return out


class Normalizer(eqx.Module):
    """Model inputs from ``(f, c)``, scaled as in the transfer study, saved with the model.

    Per sample, ``s = rms(f) / median_train(rms(f))``; the model sees ``f / s`` and each
    coefficient ``c_j / (s * m_j)`` broadcast over the grid, where ``m_j`` is the median of the
    non-zero ``|c_j|`` of the training set. Over the non-zero values because in a mixture of
    systems a term is absent from whole systems (``k12`` and ``omega`` are 0 for Helmholtz and
    Poisson respectively): the plain median then lands on a tiny value and blows that channel
    up by orders of magnitude. A term the training set never has gets ``m_j = NaN`` ("not
    seen", used as 1); :meth:`complete` fills it from new data, which is what fine-tuning to a
    system with a new term (advection after Poisson + Helmholtz) needs: otherwise the new
    channel enters at whatever raw scale the physics has. Dividing *every* channel by ``s`` encodes the exact symmetry of linear problems:
    ``(a f, a c)`` has the same solution as ``(f, c)``, and now the same input. The target stays
    in physical units. Differences from the reference code: ``rms(f)`` (the grid L2 norm on the
    unit square) replaces ``||f|| h^2``, which changes with resolution, so the scaling is the same
    at every resolution; ``|c_j|`` is used because velocities take both signs.
    """

    source_scale: Float[Array, ""]
    coefficient_scale: Float[Array, " p"]

    def __init__(self, source_scale, coefficient_scale):
        self.source_scale = jnp.asarray(source_scale, jnp.float32)
        self.coefficient_scale = jnp.asarray(coefficient_scale, jnp.float32)

    @classmethod
    def fit(cls, fields: FieldSet, chunk: int = 1024) -> Normalizer:
        """Medians over the training set."""
        rms = []
        for lo in range(0, len(fields), chunk):
            f, _, _ = fields.take(np.arange(lo, min(lo + chunk, len(fields))))
            rms.append(np.sqrt(np.mean(f[:, 0].astype(np.float64) ** 2, axis=(-2, -1))))
        source = float(np.median(np.concatenate(rms)))
        coef = _nonzero_medians(fields.coefficients)
        return cls(
            jnp.asarray(source if source > 0 else 1.0, jnp.float32), jnp.asarray(coef, jnp.float32)
        )

    def complete(self, fields: FieldSet) -> Normalizer:
        """This normaliser, with the scales of terms it has not seen (NaN) fitted on ``fields``."""
        fitted = _nonzero_medians(fields.coefficients)
        scale = np.asarray(self.coefficient_scale, np.float64)
        return Normalizer(self.source_scale, np.where(np.isnan(scale), fitted, scale))

    def __call__(self, f: Float[Array, "1 h w"], c: Float[Array, " p"]) -> Float[Array, "q h w"]:
        s = _rms(f[0]) / self.source_scale
        s = jnp.where(s > 0, s, 1.0)
        scale = jnp.where(jnp.isnan(self.coefficient_scale), 1.0, self.coefficient_scale)
        planes = jnp.broadcast_to((c / (s * scale))[:, None, None], (c.shape[0], *f.shape[1:]))
        return jnp.concatenate([f / s, planes.astype(f.dtype)])
