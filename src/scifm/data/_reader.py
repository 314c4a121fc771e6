"""Lazy reading of scifm datasets and of the reference code's layout, checked when opened.

A file is checked against its layout (``scifm.data._schema``) before anything reads it: the
datasets must be there with the shapes the layout gives, every one with the same sample count
``N >= 1``. A malformed file is refused with one ``ValueError`` line naming the file, what is
wrong and what was expected, instead of a shape error deep inside training.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np

from scifm._checks import UserError
from scifm.data import _well
from scifm.data._schema import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAMES,
    OUTPUT_NAMES,
    REFERENCE_TENSOR_WIDTHS,
    Layout,
)
from scifm.data._views import LazySamples
from scifm.pdes import COEFFICIENT_NAMES

# The reference code (neuraloperators-TL-scaling) stores `tensor` (N, P) with P by system:
# Poisson (k11, k22, k12); advection-diffusion (k11, k22, k12, vx, vy); Helmholtz (kappa, omega).
_REFERENCE_TO_COEFFICIENTS = {
    "poisson": lambda t: np.c_[t, np.zeros((len(t), 3))],
    "advdiff": lambda t: np.c_[t, np.zeros((len(t), 1))],
    "helmholtz": lambda t: np.c_[t[:, :1], t[:, :1], np.zeros((len(t), 3)), t[:, 1:]],
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


def _layout(path: Path, f: h5py.File) -> Layout:
    """The layout ``f`` claims by its datasets; a file that claims none is refused."""
    keys = set(f.keys())
    if keys & set(_well.FIELD_GROUPS):
        return Layout.WELL
    if keys & {"inputs", "outputs"}:
        return Layout.SCIFM
    if "nu" in keys:  # PDEBench's Darcy flow (its `tensor` is not the reference code's)
        return Layout.PDEBENCH
    if keys & {"fields", "tensor"}:
        return Layout.REFERENCE
    known = "; ".join(f"{layout.value}: {layout.datasets}" for layout in Layout)
    raise UserError(
        f"{path} matches no known dataset layout: it holds {sorted(keys) or 'nothing'}; "
        f"known layouts are {known}"
    )


def _dataset(path: Path, f: h5py.File, layout: Layout, name: str) -> h5py.Dataset:
    """``f[name]``, a dataset of real numbers; else a ValueError naming what the layout needs."""
    if name not in f:
        raise UserError(
            f"{path}: the {layout.value} layout needs a dataset {name!r}, which the file lacks "
            f"(it holds {sorted(f.keys())}); expected {layout.datasets}"
        )
    d = f[name]
    if not isinstance(d, h5py.Dataset):
        raise UserError(f"{path}: {name!r} is a group, not a dataset; expected {layout.datasets}")
    if d.dtype.kind not in "fiu":
        raise UserError(f"{path}: {name} holds {d.dtype}, not real numbers (expected float32)")
    return d


def _check_fields(
    path: Path, layout: Layout, d: h5py.Dataset, channels: int | str, what: str
) -> None:
    """``d`` is (N, channels, H, W) with N, H, W >= 1 (any channels >= 1 if a symbol, "C")."""
    name = d.name.lstrip("/")
    expected = f"(N, {channels}, H, W): {what} on an H x W grid"
    if d.ndim != 4 or (d.shape[1] != channels if isinstance(channels, int) else d.shape[1] < 1):
        raise UserError(
            f"{path}: {name} has shape {d.shape}; the {layout.value} layout needs {expected}"
        )
    if d.shape[0] == 0:
        raise UserError(
            f"{path} holds no samples ({name} has shape {d.shape}); a dataset needs N >= 1"
        )
    if 0 in d.shape[2:]:
        raise UserError(f"{path}: {name} has an empty grid, shape {d.shape}; expected {expected}")


def _check_rows(
    path: Path, layout: Layout, d: h5py.Dataset, n: int, columns: int | str, what: str
) -> None:
    """``d`` is a table of ``n`` rows and ``columns`` columns (any count if a symbol, "Q")."""
    name = d.name.lstrip("/")
    expected = f"({n}, {columns}): {what}"
    if d.ndim != 2:
        raise UserError(
            f"{path}: {name} has shape {d.shape}; the {layout.value} layout needs {expected}"
        )
    if d.shape[0] != n:
        raise UserError(
            f"{path}: {name} has {d.shape[0]} rows for {n} samples; the {layout.value} layout "
            f"needs one row per sample, {expected}"
        )
    if isinstance(columns, int) and d.shape[1] != columns:
        raise UserError(
            f"{path}: {name} has {d.shape[1]} columns; the {layout.value} layout needs {expected}"
        )


def _names(path: Path, d: h5py.Dataset) -> list[str]:
    name = d.name.lstrip("/")
    if "names" not in d.attrs:
        raise UserError(f"{path}: {name} has no attribute 'names' (its column names)")
    return [str(_plain(x)) for x in np.atleast_1d(d.attrs["names"])]


def _channel_names(path: Path, d: h5py.Dataset, default: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the channels of fields ``d`` (N, C, H, W): its attribute ``names``.

    A one-channel dataset without names is ``default`` (files of scifm before field inputs).
    """
    name, channels = d.name.lstrip("/"), d.shape[1]
    if "names" not in d.attrs:
        if channels == len(default):
            return default
        raise UserError(
            f"{path}: {name} has {channels} channels but no attribute 'names' naming them "
            f"(e.g. {list(default) + ['a']}); only a {len(default)}-channel {name} may omit it"
        )
    names = tuple(str(_plain(x)) for x in np.atleast_1d(d.attrs["names"]))
    if len(names) != channels or len(set(names)) != len(names) or not all(names):
        raise UserError(
            f"{path}: {name} has {channels} channels but names {list(names)}; expected "
            f"{channels} distinct non-empty names"
        )
    return names


class _Channels(LazySamples):
    """A lazy channel slice ``source[:, channels]`` of an HDF5 dataset (N, C, H, W)."""

    def __init__(self, source: h5py.Dataset, channels: slice):
        self._source, self._channels = source, channels
        n, c, h, w = source.shape
        self.shape = (n, len(range(c)[channels]), h, w)
        self.dtype = source.dtype

    def read(self, index) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return self._source[index, self._channels]
        return self._source[index][:, self._channels]


class _ForcingAndCoefficient(LazySamples):
    """PDEBench Darcy inputs, lazily: ``(f, a)`` per sample, ``f = beta`` everywhere, ``a = nu``."""

    def __init__(self, nu: h5py.Dataset, beta: float):
        self._nu, self._beta = nu, beta
        n, h, w = nu.shape
        self.shape = (n, 2, h, w)
        self.dtype = nu.dtype

    def read(self, index) -> np.ndarray:
        a = self._nu[index]
        return np.stack([np.full_like(a, self._beta), a], axis=-3)


_BETA = re.compile(r"beta([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)")
PDEBENCH_EQUATION = (
    "-div(a(x) grad u) = f on the unit square (0,1)^2 with u = 0 on the boundary (Dirichlet, "
    "not periodic), inputs (f = beta, a = nu), output u; PDEBench's 2-D Darcy flow"
)


class PDEDataset:
    """An open dataset: ``inputs`` and ``outputs`` are read lazily (index them to load samples).

    Attributes:
        inputs, outputs: (N, C, H, W) and (N, K, H, W) arrays read on indexing (h5py datasets
            or channel views).
        input_names, output_names: the names of their channels, e.g. ``("f", "a")``, ``("u",)``.
        coefficients: (N, 6) float array, columns ``COEFFICIENT_NAMES`` (loaded; it is small).
        parameters: (N, Q) float array of the system's physics parameters, ``parameter_names``.
        system: system name (``"poisson"``, ``"advdiff"``, ``"helmholtz"``) or None if unknown.
        attrs: file attributes as a dict.
        layout: :class:`Layout` ``SCIFM``, ``REFERENCE``, ``PDEBENCH`` or ``WELL``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not HDF5, no known layout, or a malformed file of one (see ``open``).
    """

    def __init__(self, path: str | os.PathLike, system: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such dataset: {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise UserError(f"{self.path} is not a readable HDF5 file ({e})") from None
        try:
            f = self._file
            self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
            self.layout = _layout(self.path, f)
            if self.layout is Layout.SCIFM:
                self._open_scifm(f)
            elif self.layout is Layout.PDEBENCH:
                self._open_pdebench(f)
            elif self.layout is Layout.WELL:
                self._open_well(f)
            else:
                self._open_reference(f)
            if system is not None and self.system not in (None, system):
                raise UserError(f"{self.path} holds system {self.system!r}, not {system!r}")
        except BaseException:
            self.close()
            raise

    def _open_scifm(self, f: h5py.File) -> None:
        path, layout = self.path, Layout.SCIFM
        inputs, outputs, coefficients, parameters = (
            _dataset(path, f, layout, name)
            for name in ("inputs", "outputs", "coefficients", "parameters")
        )
        _check_fields(path, layout, inputs, "C", "the input fields of each sample")
        _check_fields(path, layout, outputs, "K", "the output fields of each sample")
        if outputs.shape[0] != inputs.shape[0] or outputs.shape[2:] != inputs.shape[2:]:
            raise UserError(
                f"{path}: outputs has shape {outputs.shape} but inputs {inputs.shape}; the scifm "
                f"layout needs (N, C, H, W) and (N, K, H, W) with the same N, H and W"
            )
        n = inputs.shape[0]
        _check_rows(
            path, layout, coefficients, n, len(COEFFICIENT_NAMES), ", ".join(COEFFICIENT_NAMES)
        )
        _check_rows(path, layout, parameters, n, "Q", "the physics parameters of each sample")
        if self.attrs.get("format") != FORMAT:
            raise UserError(
                f"{path} is not a scifm dataset: attribute format is "
                f"{self.attrs.get('format')!r}, expected {FORMAT!r} (as scifm generate writes)"
            )
        if self.attrs.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{path}: format version {self.attrs.get('format_version')!r}; this scifm reads "
                f"version {FORMAT_VERSION}"
            )
        if not self.attrs.get("complete", False):
            written = self.attrs.get("n_written", "?")
            raise UserError(
                f"{path} is not a complete scifm dataset ({written} of {n} samples written); "
                "rerun the scifm generate command that wrote it to finish it"
            )
        names = _names(path, coefficients)
        if tuple(names) != COEFFICIENT_NAMES:
            raise UserError(
                f"{path}: coefficient columns {names}, expected {list(COEFFICIENT_NAMES)}"
            )
        parameter_names = _names(path, parameters)
        if len(parameter_names) != parameters.shape[1]:
            raise UserError(
                f"{path}: parameters has {parameters.shape[1]} columns but names "
                f"{parameter_names}; expected one name per column"
            )
        self.system = self.attrs.get("system")
        self.inputs, self.outputs = inputs, outputs
        self.input_names = _channel_names(path, inputs, INPUT_NAMES)
        self.output_names = _channel_names(path, outputs, OUTPUT_NAMES)
        self.coefficients = coefficients[...].astype(np.float64)
        self.parameters = parameters[...].astype(np.float64)
        self.parameter_names = tuple(parameter_names)

    def _open_pdebench(self, f: h5py.File) -> None:
        """PDEBench's 2-D Darcy flow file: ``nu`` (N, H, W), ``tensor`` (N, 1, H, W), beta
        from the file name. Coefficients as the Darcy generator's: ``k11 = k22 = mean(nu)``."""
        path, layout = self.path, Layout.PDEBENCH
        nu, tensor = _dataset(path, f, layout, "nu"), _dataset(path, f, layout, "tensor")
        if nu.ndim != 3 or min(nu.shape) < 1:
            raise UserError(
                f"{path}: nu has shape {nu.shape}; the {layout.value} layout needs (N, H, W): "
                "the coefficient field of each sample"
            )
        if tensor.shape != (nu.shape[0], 1, *nu.shape[1:]):
            raise UserError(
                f"{path}: tensor has shape {tensor.shape} but nu {nu.shape}; the "
                f"{layout.value} layout needs (N, 1, H, W) with nu's N, H and W"
            )
        match = _BETA.search(path.name)
        if match is None:
            raise UserError(
                f"{path}: a PDEBench Darcy file names its forcing beta in the file name (e.g. "
                "2D_DarcyFlow_beta1.0_Train.hdf5), and this name has none; rename the file"
            )
        beta = float(match.group(1))
        n = nu.shape[0]
        mean = np.concatenate(
            [nu[lo : lo + 256].mean(axis=(-2, -1), dtype=np.float64) for lo in range(0, n, 256)]
        )
        self.system = "pdebench-darcy"
        self.attrs.setdefault("equation", PDEBENCH_EQUATION)
        self.inputs, self.outputs = _ForcingAndCoefficient(nu, beta), tensor
        self.input_names, self.output_names = ("f", "a"), OUTPUT_NAMES
        self.coefficients = np.zeros((n, len(COEFFICIENT_NAMES)))
        self.coefficients[:, 0] = self.coefficients[:, 1] = mean
        self.parameters = np.full((n, 1), beta)
        self.parameter_names = ("beta",)

    def _open_well(self, f: h5py.File) -> None:
        """The Well's layout as one-step samples (``scifm.data._well``); no coefficients."""
        well = _well.read(self.path, f, self.attrs)
        self.system, self.attrs = well.system, well.attrs
        self.inputs, self.outputs = well.inputs, well.outputs
        self.input_names, self.output_names = well.input_names, well.output_names
        self.coefficients = np.zeros((len(well.inputs), len(COEFFICIENT_NAMES)))
        self.parameters, self.parameter_names = well.parameters, well.parameter_names

    def _open_reference(self, f: h5py.File) -> None:
        path, layout = self.path, Layout.REFERENCE
        fields, tensor = _dataset(path, f, layout, "fields"), _dataset(path, f, layout, "tensor")
        _check_fields(path, layout, fields, 2, "the source f and the solution u of each sample")
        n = fields.shape[0]
        widths = ", ".join(f"{p} ({name})" for p, name in REFERENCE_TENSOR_WIDTHS.items())
        _check_rows(path, layout, tensor, n, "P", f"P one of {widths}")
        p = tensor.shape[1]
        if p not in REFERENCE_TENSOR_WIDTHS:
            raise UserError(
                f"{path}: tensor has {p} columns, which names no system; the reference layout "
                f"knows P = {widths}"
            )
        self.system = REFERENCE_TENSOR_WIDTHS[p]
        self.inputs, self.outputs = _Channels(fields, slice(0, 1)), _Channels(fields, slice(1, 2))
        self.input_names, self.output_names = INPUT_NAMES, OUTPUT_NAMES
        self.coefficients = _REFERENCE_TO_COEFFICIENTS[self.system](tensor[...].astype(np.float64))
        if "other" in f:  # realised advection ratios
            other = _dataset(path, f, layout, "other")
            if other.shape not in ((n,), (n, 1)):
                raise UserError(
                    f"{path}: other has shape {other.shape}; the reference layout needs ({n},) "
                    f"or ({n}, 1): the advection ratio psi of each sample"
                )
            self.parameters = other[...].astype(np.float64).reshape(n, 1)
            self.parameter_names = ("psi",)
        else:
            self.parameters = np.zeros((n, 0))
            self.parameter_names = ()

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
        return square_side(self.grid, self.path)

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
            f"grid={grid_text(self.grid)}, layout={self.layout.value!r})"
        )


def open(path: str | os.PathLike, system: str | None = None) -> PDEDataset:  # noqa: A001
    """Open a dataset in the scifm layout, the reference code's (``fields``, ``tensor``),
    PDEBench's 2-D Darcy flow (``nu``, ``tensor``, beta in the file name) or The Well's (fields
    grouped by tensor order, read as one-step samples: step t in, t + 1 out; ``_well``).

    Args:
        path: the HDF5 file.
        system: expected system; for reference files it is inferred from the tensor width.

    Every dataset of the layout is checked before anything is read (``scifm.data._schema``):
    fields (N, C, H, W) and (N, K, H, W) with named channels in the scifm layout, (N, 2, H, W)
    in the reference one, N >= 1, one
    table row per sample, 6 coefficient columns, a known reference tensor width. Grids need not
    be square (``grid`` is ``(H, W)``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not HDF5, not a complete dataset of a known layout, a dataset missing or of
            the wrong shape, or not the expected system; one line naming the file, what is wrong
            and what the layout expects.
    """
    return PDEDataset(path, system)


def grid_text(grid: tuple[int, int]) -> str:
    """``(H, W)`` as ``"HxW"``, the way summaries print a grid."""
    return f"{grid[0]}x{grid[1]}"


def square_side(grid: tuple[int, int], name: object) -> int:
    """The side of a square ``grid``; ValueError naming ``name`` (a file) if it is not square."""
    h, w = grid
    if h != w:
        raise UserError(
            f"{name}: the grid is {h}x{w}, not square; resolution (one side) is defined for "
            "square grids only, use grid (H, W)"
        )
    return h


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
