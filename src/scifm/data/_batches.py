"""Training data in memory or read lazily from HDF5, epoch batches, and input normalisation."""

from __future__ import annotations

import os
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from scifm.data._reader import PDEDataset
from scifm.data._reader import open as open_dataset

DEFAULT_MEMORY_BUDGET = 4 * 2**30  # bytes of fields loaded into memory before reading lazily


@dataclass
class FieldSet:
    """Samples ``(f, c, u)``: sources (N, 1, H, W), coefficients (N, 6), solutions (N, 1, H, W).

    Fields are numpy arrays (in memory) or HDF5 datasets read on demand; ``take`` works for both.
    """

    inputs: object
    coefficients: np.ndarray
    outputs: object
    name: str = ""
    _dataset: PDEDataset | None = None
    _parts: list[FieldSet] | None = None  # what a lazy concatenation reads from

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        limit: int | None = None,
    ) -> FieldSet:
        """Open a dataset; load its fields into memory if they fit in ``memory_budget`` bytes.

        ``limit`` keeps the first ``limit`` samples (e.g. ``n`` downstream examples). NaN or Inf
        in the data is refused.
        """
        ds = open_dataset(path)
        n = len(ds) if limit is None else int(limit)
        if not 1 <= n <= len(ds):
            ds.close()
            raise ValueError(f"{path} has {len(ds)} samples; cannot take {limit}")
        size = 2 * n * int(np.prod(ds.inputs.shape[1:])) * 4
        coefficients = ds.coefficients[:n]
        if size <= memory_budget:
            f, u = np.asarray(ds.inputs[:n], np.float32), np.asarray(ds.outputs[:n], np.float32)
            ds.close()
            fields = cls(f, coefficients, u, name=str(path))
        else:
            fields = cls(ds.inputs, coefficients, ds.outputs, name=str(path), _dataset=ds)
        fields.check_finite()
        return fields

    @classmethod
    def concatenate(cls, parts: list[FieldSet], name: str | None = None) -> FieldSet:
        """The samples of ``parts`` one after another (a mixture of systems: one channel layout).

        In-memory parts are copied into one array; lazily read parts stay lazy.
        """
        if not parts:
            raise ValueError("concatenate needs at least one FieldSet")
        shapes = {tuple(p.inputs.shape[1:]) for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"cannot mix fields of different shapes: {sorted(shapes)}")
        name = name or " + ".join(p.name for p in parts)
        coefficients = np.concatenate([p.coefficients for p in parts])
        if all(isinstance(p.inputs, np.ndarray) for p in parts):
            return cls(
                np.concatenate([p.inputs[: len(p)] for p in parts]),
                coefficients,
                np.concatenate([p.outputs[: len(p)] for p in parts]),
                name=name,
            )
        lengths = [len(p) for p in parts]
        return cls(
            _Stacked([p.inputs for p in parts], lengths),
            coefficients,
            _Stacked([p.outputs for p in parts], lengths),
            name=name,
            _parts=list(parts),
        )

    def __len__(self) -> int:
        return len(self.coefficients)  # lazy fields may be longer: the first len(self) count

    @property
    def resolution(self) -> int:
        return int(self.inputs.shape[-1])

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Samples at ``index`` (any order) as float32 numpy arrays."""
        index = np.asarray(index)
        if isinstance(self.inputs, np.ndarray):
            f, u = self.inputs[index], self.outputs[index]
        else:  # h5py reads strictly increasing indices: read each once, then restore the order
            unique, inverse = np.unique(index, return_inverse=True)
            f = np.asarray(self.inputs[unique], np.float32)[inverse]
            u = np.asarray(self.outputs[unique], np.float32)[inverse]
        return f, self.coefficients[index].astype(np.float32), u

    def check_finite(self, chunk: int = 1024) -> None:
        if not np.isfinite(self.coefficients).all():
            raise ValueError(f"{self.name}: coefficients contain NaN or Inf")
        for lo in range(0, len(self), chunk):
            f, _, u = self.take(np.arange(lo, min(lo + chunk, len(self))))
            if not (np.isfinite(f).all() and np.isfinite(u).all()):
                raise ValueError(f"{self.name}: fields contain NaN or Inf near sample {lo}")

    def close(self) -> None:
        if self._dataset is not None:
            self._dataset.close()
        for part in self._parts or []:
            part.close()


class _Stacked:
    """Several arrays (or HDF5 datasets) read as one along the first axis, for sorted indices."""

    def __init__(self, arrays: list, lengths: list[int]):
        self.arrays, self.offsets = arrays, np.cumsum([0, *lengths])
        self.shape = (int(self.offsets[-1]), *arrays[0].shape[1:])

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index)
        part = np.searchsorted(self.offsets, index, side="right") - 1
        out = np.empty((len(index), *self.shape[1:]), np.float32)
        for j in np.unique(part):
            where = part == j
            out[where] = self.arrays[j][index[where] - self.offsets[j]]
        return out


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """A fresh permutation of ``range(n)`` for each ``(seed, epoch)``, cut into full batches.

    The batch size is capped at ``n``; a last partial batch is dropped (every epoch has the
    same compiled step shape), so each epoch takes ``max(1, n // batch_size)`` steps.
    """
    size = min(batch_size, n)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i * size : (i + 1) * size] for i in range(n // size)]


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
