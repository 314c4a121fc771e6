"""Lazy reading of scifm datasets and of the reference code's layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from scifm.data._schema import FORMAT
from scifm.pdes import COEFFICIENT_NAMES

# The reference code (neuraloperators-TL-scaling) stores `tensor` (N, P) with P by system:
# Poisson (k11, k22, k12); advection-diffusion (k11, k22, k12, vx, vy); Helmholtz (kappa, omega).
_REFERENCE_TENSOR = {
    3: ("poisson", lambda t: np.c_[t, np.zeros((len(t), 3))]),
    5: ("advdiff", lambda t: np.c_[t, np.zeros((len(t), 1))]),
    2: ("helmholtz", lambda t: np.c_[t[:, :1], t[:, :1], np.zeros((len(t), 3)), t[:, 1:]]),
}


def _plain(value):
    """An HDF5 attribute as a plain Python value (str, int, float, bool, list)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    return value


class _Channels:
    """A lazy channel slice ``source[:, channels]`` of an HDF5 dataset (N, C, H, W)."""

    def __init__(self, source: h5py.Dataset, channels: slice):
        self._source, self._channels = source, channels
        n, c, h, w = source.shape
        self.shape = (n, len(range(c)[channels]), h, w)
        self.dtype = source.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, tuple):
            raise IndexError("index samples only, e.g. data.inputs[10:20]")
        if isinstance(index, int | np.integer):
            return self._source[index, self._channels]
        return self._source[index][:, self._channels]


class PDEDataset:
    """An open dataset: ``inputs`` and ``outputs`` are read lazily (index them to load samples).

    Attributes:
        inputs, outputs: (N, C, H, W) arrays read on indexing (h5py datasets or channel views).
        coefficients: (N, 6) float array, columns ``COEFFICIENT_NAMES`` (loaded; it is small).
        parameters: (N, Q) float array of the system's physics parameters, ``parameter_names``.
        system: system name (``"poisson"``, ``"advdiff"``, ``"helmholtz"``) or None if unknown.
        attrs: file attributes as a dict.
        layout: ``"scifm"`` or ``"reference"``.
    """

    def __init__(self, path: str | os.PathLike, system: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such dataset: {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise ValueError(f"{self.path} is not a readable HDF5 file ({e})") from None
        f = self._file
        self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if "inputs" in f and "outputs" in f:
            self._open_scifm(f)
        elif "fields" in f and "tensor" in f:
            self._open_reference(f, system)
        else:
            keys = sorted(f.keys())
            self.close()
            raise ValueError(
                f"{self.path}: neither the scifm layout (inputs, outputs, coefficients) nor the "
                f"reference layout (fields, tensor); it holds {keys}"
            )
        if system is not None and self.system not in (None, system):
            self.close()
            raise ValueError(f"{self.path} holds system {self.system!r}, not {system!r}")

    def _open_scifm(self, f: h5py.File) -> None:
        if f.attrs.get("format") != FORMAT or not f.attrs.get("complete", False):
            self.close()
            raise ValueError(f"{self.path} is not a complete scifm dataset")
        self.layout = "scifm"
        self.system = self.attrs.get("system")
        self.inputs, self.outputs = f["inputs"], f["outputs"]
        names = [str(x) for x in f["coefficients"].attrs["names"]]
        if tuple(names) != COEFFICIENT_NAMES:
            self.close()
            raise ValueError(
                f"{self.path}: coefficient columns {names}, expected {COEFFICIENT_NAMES}"
            )
        self.coefficients = f["coefficients"][...].astype(np.float64)
        self.parameters = f["parameters"][...].astype(np.float64)
        self.parameter_names = tuple(str(x) for x in f["parameters"].attrs["names"])

    def _open_reference(self, f: h5py.File, system: str | None) -> None:
        fields, tensor = f["fields"], f["tensor"][...].astype(np.float64)
        if fields.ndim != 4 or fields.shape[1] != 2 or tensor.ndim != 2:
            self.close()
            raise ValueError(
                f"{self.path}: reference layout needs fields (N, 2, H, W) and tensor (N, P), "
                f"got {fields.shape} and {tensor.shape}"
            )
        p = tensor.shape[1]
        if p not in _REFERENCE_TENSOR:
            self.close()
            raise ValueError(
                f"{self.path}: tensor has {p} columns; known: 3 (poisson), 5 (advdiff), 2 (helmholtz)"
            )
        name, to_coefficients = _REFERENCE_TENSOR[p]
        self.layout = "reference"
        self.system = name
        self.inputs, self.outputs = _Channels(fields, slice(0, 1)), _Channels(fields, slice(1, 2))
        self.coefficients = to_coefficients(tensor)
        if "other" in f:  # realised advection ratios
            self.parameters = f["other"][...].astype(np.float64).reshape(len(tensor), -1)
            self.parameter_names = ("psi",)
        else:
            self.parameters = np.zeros((len(tensor), 0))
            self.parameter_names = ()

    @property
    def resolution(self) -> int:
        return int(self.inputs.shape[-1])

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def ranges(self) -> dict:
        return json.loads(self.attrs.get("ranges", "{}"))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PDEDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PDEDataset({str(self.path)!r}, system={self.system!r}, n={len(self)}, "
            f"resolution={self.resolution}, layout={self.layout!r})"
        )


def open(path: str | os.PathLike, system: str | None = None) -> PDEDataset:  # noqa: A001
    """Open a dataset in the scifm layout or the reference code's (``fields``, ``tensor``).

    Args:
        path: the HDF5 file.
        system: expected system; for reference files it is inferred from the tensor width.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a complete dataset of a known layout, or not the expected system.
    """
    return PDEDataset(path, system)


def model_inputs(inputs: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The model's input channels: fields, then each coefficient broadcast over the grid.

    ``inputs`` (B, C, H, W) and ``coefficients`` (B, P) give (B, C + P, H, W). Built at batch time
    so files store 1 field per sample instead of 7.
    """
    b, _, h, w = inputs.shape
    planes = np.broadcast_to(
        np.asarray(coefficients, inputs.dtype)[:, :, None, None], (b, coefficients.shape[1], h, w)
    )
    return np.concatenate([inputs, planes], axis=1)
