"""Training data in memory or read lazily from HDF5, epoch batches, and input normalisation."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from scifm._checks import UserError
from scifm.data._reader import PDEDataset, grid_text, square_side
from scifm.data._reader import open as open_dataset
from scifm.data._schema import INPUT_NAMES, OUTPUT_NAMES
from scifm.pdes import COEFFICIENT_NAMES

DEFAULT_MEMORY_BUDGET = 4 * 2**30  # bytes of fields loaded into memory before reading lazily


@dataclass
class FieldSet:
    """Samples ``(f, c, u)``: input fields (N, C, H, W), coefficients (N, 6), outputs (N, K, H, W).

    ``input_names`` name the input channels (the source ``f`` first in scifm's systems, then
    coefficient fields such as Darcy's ``a``), ``output_names`` the outputs (``u``). Fields are
    numpy arrays (in memory) or HDF5 datasets read on demand; ``take`` works for both. Grids
    need not be square (the FNO takes any ``H x W`` with enough Fourier modes).

    Raises:
        ValueError: fields not (N, C, H, W) and (N, K, H, W) with the same N, H and W, names
            that do not match the channels, or coefficients not one row of 6 per sample.
    """

    inputs: object
    coefficients: np.ndarray
    outputs: object
    name: str = ""
    input_names: tuple[str, ...] = INPUT_NAMES
    output_names: tuple[str, ...] = OUTPUT_NAMES
    _dataset: PDEDataset | None = None
    _parts: list[FieldSet] | None = None  # what a lazy concatenation reads from

    def __post_init__(self):
        label = self.name or "FieldSet"
        f, u, c = tuple(self.inputs.shape), tuple(self.outputs.shape), np.shape(self.coefficients)
        if len(f) != 4 or len(u) != 4 or u[0] != f[0] or u[2:] != f[2:]:
            raise UserError(
                f"{label}: inputs {f} and outputs {u}; expected (N, C, H, W) and (N, K, H, W) "
                "with the same N, H and W"
            )
        self.input_names, self.output_names = tuple(self.input_names), tuple(self.output_names)
        for what, names, channels in (
            ("input", self.input_names, f[1]),
            ("output", self.output_names, u[1]),
        ):
            if len(names) != channels:
                raise UserError(
                    f"{label}: {channels} {what} channels but {len(names)} {what} names "
                    f"{list(names)}; expected one name per channel"
                )
        if len(c) != 2 or c[1] != len(COEFFICIENT_NAMES) or c[0] > f[0]:
            raise UserError(
                f"{label}: coefficients {c} for {f[0]} samples; expected (N, "
                f"{len(COEFFICIENT_NAMES)}) with N <= {f[0]}"
            )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        limit: int | None = None,
    ) -> FieldSet:
        """Open a dataset; load its fields into memory if they fit in ``memory_budget`` bytes.

        ``limit`` keeps the first ``limit`` samples (e.g. ``n`` downstream examples).

        Raises:
            FileNotFoundError: no such file.
            ValueError: a malformed file, refused when opened (:func:`scifm.data.open`);
                ``limit`` outside ``1..N``; NaN or Inf in the data.
        """
        ds = open_dataset(path)
        try:
            n = len(ds) if limit is None else int(limit)
            if not 1 <= n <= len(ds):
                raise UserError(
                    f"{path} holds {len(ds)} samples; cannot take {limit} (between 1 and {len(ds)})"
                )
            size = n * (int(np.prod(ds.inputs.shape[1:])) + int(np.prod(ds.outputs.shape[1:]))) * 4
            coefficients = ds.coefficients[:n]
            names = dict(input_names=ds.input_names, output_names=ds.output_names)
            if size <= memory_budget:
                f = np.asarray(ds.inputs[:n], np.float32)
                u = np.asarray(ds.outputs[:n], np.float32)
                ds.close()
                fields = cls(f, coefficients, u, name=str(path), **names)
            else:
                fields = cls(
                    ds.inputs, coefficients, ds.outputs, name=str(path), _dataset=ds, **names
                )
            fields.check_finite()
        except BaseException:
            ds.close()
            raise
        return fields

    @classmethod
    def concatenate(cls, parts: list[FieldSet], name: str | None = None) -> FieldSet:
        """The samples of ``parts`` one after another (a mixture of systems: one channel layout).

        In-memory parts are copied into one array; lazily read parts stay lazy.
        """
        if not parts:
            raise UserError("concatenate needs at least one FieldSet")
        grids = {p.grid for p in parts}
        if len(grids) > 1:
            shown = ", ".join(grid_text(g) for g in sorted(grids))
            raise UserError(f"cannot mix fields on different grids: {shown}")
        channels = {(p.input_names, p.output_names) for p in parts}
        if len(channels) > 1:
            shown = "; ".join(f"{'+'.join(i)} -> {'+'.join(o)}" for i, o in sorted(channels))
            raise UserError(f"cannot mix datasets of different channels: {shown}")
        name = name or " + ".join(p.name for p in parts)
        names = dict(input_names=parts[0].input_names, output_names=parts[0].output_names)
        coefficients = np.concatenate([p.coefficients for p in parts])
        if all(isinstance(p.inputs, np.ndarray) for p in parts):
            return cls(
                np.concatenate([p.inputs[: len(p)] for p in parts]),
                coefficients,
                np.concatenate([p.outputs[: len(p)] for p in parts]),
                name=name,
                **names,
            )
        lengths = [len(p) for p in parts]
        return cls(
            _Stacked([p.inputs for p in parts], lengths),
            coefficients,
            _Stacked([p.outputs for p in parts], lengths),
            name=name,
            _parts=list(parts),
            **names,
        )

    def __len__(self) -> int:
        return len(self.coefficients)  # lazy fields may be longer: the first len(self) count

    @property
    def grid(self) -> tuple[int, int]:
        """``(H, W)``: grid points along x (axis -2) and y (axis -1)."""
        h, w = self.inputs.shape[-2:]
        return int(h), int(w)

    @property
    def resolution(self) -> int:
        """Grid points per side of a square grid.

        Raises:
            ValueError: the grid is not square (``grid`` gives both sides).
        """
        return square_side(self.grid, self.name or "FieldSet")

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

    def subset(self, index: np.ndarray, name: str | None = None) -> FieldSet:
        """The samples at ``index`` (any order), in memory, with the same channel names."""
        f, c, u = self.take(index)
        return FieldSet(
            f,
            self.coefficients[np.asarray(index)],
            u,
            name=name or self.name,
            input_names=self.input_names,
            output_names=self.output_names,
        )

    def check_finite(self, chunk: int = 1024) -> None:
        if not np.isfinite(self.coefficients).all():
            raise UserError(f"{self.name}: coefficients contain NaN or Inf")
        for lo in range(0, len(self), chunk):
            f, _, u = self.take(np.arange(lo, min(lo + chunk, len(self))))
            if not (np.isfinite(f).all() and np.isfinite(u).all()):
                raise UserError(f"{self.name}: fields contain NaN or Inf near sample {lo}")

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
