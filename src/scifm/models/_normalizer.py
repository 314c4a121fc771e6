"""The input normalisation of an operator model, fitted on its training set."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from scifm._checks import UserError
from scifm.data import FieldSet


def _rms(f: Float[Array, "*batch h w"]) -> Float[Array, "*batch"]:
    return jnp.sqrt(jnp.mean(f**2, axis=(-2, -1)))


def _nonzero_medians(coefficients: np.ndarray) -> np.ndarray:
    """Median of the non-zero ``|c_j|`` per column; NaN for a column that is all zero.

    Also the scales of coefficient fields, from their per-sample rms (N, K).
    """
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

    **Coefficient fields** (input channels after the source, e.g. Darcy's ``a``) are treated as
    the coefficients are, per channel: ``a_j / (s * r_j)`` with ``r_j`` the median of the non-zero
    per-sample ``rms(a_j)`` of the training set (NaN if never non-zero, filled by
    :meth:`complete`), so the symmetry ``(a f, a k) -> u`` still holds. ``field_scale`` holds
    ``r_j``; it is ``None`` for inputs that are the source alone (every model before field
    inputs: their checkpoints load unchanged). Without a source (``source=False``: data whose
    first channel is not ``f``) there is no ``s``: every field is divided by its ``r_j`` and
    ``source_scale`` is unused.
    """

    source_scale: Float[Array, ""]
    coefficient_scale: Float[Array, " p"]
    field_scale: Float[Array, " k"] | None
    source: bool = eqx.field(static=True)

    def __init__(self, source_scale, coefficient_scale, field_scale=None, *, source=True):
        self.source_scale = jnp.asarray(source_scale, jnp.float32)
        self.coefficient_scale = jnp.asarray(coefficient_scale, jnp.float32)
        self.field_scale = None if field_scale is None else jnp.asarray(field_scale, jnp.float32)
        self.source = bool(source)

    @classmethod
    def fit(cls, fields: FieldSet, chunk: int = 1024) -> Normalizer:
        """Medians over the training set; the source is the first input channel if named ``f``."""
        rms = []
        for lo in range(0, len(fields), chunk):
            f, _, _ = fields.take(np.arange(lo, min(lo + chunk, len(fields))))
            rms.append(np.sqrt(np.mean(f.astype(np.float64) ** 2, axis=(-2, -1))))
        rms = np.concatenate(rms)  # (N, C)
        source = fields.input_names[0] == "f"
        scale = float(np.median(rms[:, 0])) if source else 1.0
        coef = _nonzero_medians(fields.coefficients)
        extra = rms[:, 1:] if source else rms
        field_scale = _nonzero_medians(extra) if extra.shape[1] else None
        return cls(scale if scale > 0 else 1.0, coef, field_scale, source=source)

    def complete(self, fields: FieldSet) -> Normalizer:
        """This normaliser, with the scales of terms it has not seen (NaN) fitted on ``fields``."""
        new = Normalizer.fit(fields)
        if new.source != self.source or (new.field_scale is None) != (self.field_scale is None):
            raise UserError(
                f"{fields.name}: its input channels {list(fields.input_names)} do not match this "
                "normaliser's; a model for other channels needs an adapter"
            )

        def filled(old, fitted):
            if old is None:
                return None
            old = np.asarray(old, np.float64)
            return np.where(np.isnan(old), np.asarray(fitted, np.float64), old)

        return Normalizer(
            self.source_scale,
            filled(self.coefficient_scale, new.coefficient_scale),
            filled(self.field_scale, new.field_scale),
            source=self.source,
        )

    def __call__(self, f: Float[Array, "c h w"], c: Float[Array, " p"]) -> Float[Array, "q h w"]:
        if self.source:
            s = _rms(f[0]) / self.source_scale
            s = jnp.where(s > 0, s, 1.0)
        else:
            s = jnp.ones((), f.dtype)
        scale = jnp.where(jnp.isnan(self.coefficient_scale), 1.0, self.coefficient_scale)
        planes = jnp.broadcast_to((c / (s * scale))[:, None, None], (c.shape[0], *f.shape[1:]))
        if self.field_scale is None:
            fields = f / s
        else:
            r = jnp.where(jnp.isnan(self.field_scale), 1.0, self.field_scale)
            r = jnp.concatenate([jnp.ones((1,), r.dtype), r]) if self.source else r
            fields = f / (s * r[:, None, None]).astype(f.dtype)
        return jnp.concatenate([fields, planes.astype(f.dtype)])
