"""The Well's HDF5 layout (PolymathicAI), read as one-step samples: fields at step t in, t+1 out.

A Well file holds trajectories of a 2-D (or 3-D) simulation. Its fields are grouped by tensor
order, ``t0_fields`` (scalars such as density), ``t1_fields`` (vectors, last axis of size D) and
``t2_fields`` (tensors, last two axes D x D), each field a dataset whose leading axes are the
trajectory (if ``sample_varying``) and the time step (if ``time_varying``), then the spatial
axes it varies along (``dim_varying``), then its tensor indices. ``dimensions`` holds ``time``
and the coordinates named by ``spatial_dims``; ``scalars`` holds non-spatial quantities with the
same two flags; ``boundary_conditions`` holds one group per boundary with ``bc_type`` (periodic,
wall or open). This module reads that layout as published in the Well's documentation
(``docs/data_format.md``) and read by its ``WellDataset`` (components named ``velocity_x``,
``velocity_y``, ``stress_xy``, ...).

scifm's operators map fields to fields, so a Well file becomes the map its benchmark trains
first (one input step, one output step): sample ``i = b * (T - 1) + t`` is trajectory ``b`` at
step ``t``; its inputs are every time-varying field at step ``t`` followed by every constant
field (a coefficient such as a permeability), its outputs the time-varying fields at ``t + 1``.
Constant scalars, time-varying scalars at step ``t``, the trajectory and the time ``t`` are its
parameters. Nothing is loaded until indexed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from scifm._checks import UserError
from scifm.data._schema import WELL_DATASETS as DATASETS
from scifm.data._schema import WELL_FIELD_GROUPS as FIELD_GROUPS
from scifm.data._views import LazySamples


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _names(value) -> list[str]:
    """An HDF5 list-of-strings attribute (bytes or str, scalar or array) as a list of str."""
    return [_text(v) for v in np.atleast_1d(value).tolist()] if value is not None else []


def _flag(path: Path, d: h5py.Dataset | h5py.Group, name: str, default: bool | None = None):
    if name not in d.attrs:
        if default is not None:
            return default
        raise UserError(
            f"{path}: {d.name.lstrip('/')} has no attribute {name!r}; The Well's layout gives "
            "every field and scalar sample_varying and time_varying (and fields dim_varying)"
        )
    return bool(np.asarray(d.attrs[name]).item()) if name != "dim_varying" else d.attrs[name]


@dataclass(frozen=True)
class _Field:
    """One Well field: its dataset, its leading axes and the channels it contributes."""

    data: h5py.Dataset
    per_sample: bool
    per_step: bool
    spatial: tuple[bool, bool]
    names: tuple[str, ...]  # channel names: field, field_x, field_xy, ...

    def read(self, b: int, steps: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        """Channels at trajectory ``b`` and ``steps`` (m,): (m, C, H, W) float32."""
        index: tuple = (b,) if self.per_sample else ()
        if self.per_step:
            lo = int(steps.min())
            block = np.asarray(self.data[(*index, slice(lo, int(steps.max()) + 1))])[steps - lo]
        else:
            block = np.asarray(self.data[index] if index else self.data[()])[None]
            block = np.broadcast_to(block, (len(steps), *block.shape[1:]))
        # spatial axes the field does not vary along come back as size-1 axes, then broadcast
        shape = list(block.shape[:1])
        rest = list(block.shape[1:])
        for varies in self.spatial:
            shape.append(rest.pop(0) if varies else 1)
        block = block.reshape(*shape, -1)  # tensor components flattened, x then y (row-major)
        block = np.broadcast_to(block, (len(steps), *grid, block.shape[-1]))
        return np.moveaxis(block, -1, 1).astype(np.float32)


class WellSteps(LazySamples):
    """Lazy (N, C, H, W) fields of a Well file at step ``t + offset`` of sample ``(b, t)``."""

    def __init__(self, fields: list[_Field], windows: int, n: int, grid, offset: int):
        self._fields, self._windows, self._offset, self._grid = fields, windows, offset, grid
        self.shape = (n, sum(len(f.names) for f in fields), *grid)
        self.dtype = np.dtype(np.float32)

    def read(self, index) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return self.read(np.array([index]))[0]
        rows = np.arange(len(self))[index]
        out = np.empty((len(rows), *self.shape[1:]), np.float32)
        b, t = np.divmod(rows, self._windows)
        for traj in np.unique(b):
            where = b == traj
            steps = t[where] + self._offset
            out[where] = np.concatenate(
                [f.read(int(traj), steps, self._grid) for f in self._fields], axis=1
            )
        return out


@dataclass
class WellFile:
    """What ``PDEDataset`` takes from a Well file: lazy inputs and outputs, names, parameters."""

    inputs: WellSteps
    outputs: WellSteps
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    parameters: np.ndarray
    parameter_names: tuple[str, ...]
    system: str
    attrs: dict


def _group(path: Path, f: h5py.File, name: str) -> h5py.Group | None:
    if name not in f:
        return None
    g = f[name]
    if not isinstance(g, h5py.Group):
        raise UserError(f"{path}: {name} is a dataset, not a group; expected {DATASETS}")
    return g


def _fields(path: Path, f: h5py.File, n_traj: int, steps: int, grid, dims) -> list[_Field]:
    out = []
    for order, group_name in enumerate(FIELD_GROUPS):
        group = _group(path, f, group_name)
        if group is None:
            continue
        components = ["".join(c) for c in itertools.product(dims, repeat=order)]
        for name in _names(group.attrs.get("field_names")):
            if name not in group or not isinstance(group[name], h5py.Dataset):
                raise UserError(
                    f"{path}: {group_name} lists field {name!r} in field_names but holds no "
                    f"dataset of that name (it holds {sorted(group.keys())})"
                )
            d = group[name]
            per_sample, per_step = _flag(path, d, "sample_varying"), _flag(path, d, "time_varying")
            spatial = tuple(bool(v) for v in np.atleast_1d(_flag(path, d, "dim_varying", True)))
            if spatial == (True,):
                spatial = (True, True)
            expected = (
                *((n_traj,) if per_sample else ()),
                *((steps,) if per_step else ()),
                *(n for n, varies in zip(grid, spatial, strict=False) if varies),
                *((len(dims),) * order),
            )
            if d.dtype.kind not in "fiu" or tuple(d.shape) != expected or len(spatial) != 2:
                raise UserError(
                    f"{path}: {group_name}/{name} has shape {d.shape} ({d.dtype}); with "
                    f"sample_varying={per_sample}, time_varying={per_step}, dim_varying="
                    f"{list(spatial)} The Well's layout needs real numbers of shape "
                    f"{expected} (trajectories, steps, varying axes of {grid}, tensor indices)"
                )
            names = tuple(f"{name}_{c}" if c else name for c in components)
            out.append(_Field(d, per_sample, per_step, spatial, names))
    return out


def _scalars(path: Path, f: h5py.File, n_traj: int, steps: int, windows: int):
    """Per-sample values of every scalar: constant ones and time-varying ones at the input step."""
    group = _group(path, f, "scalars")
    if group is None:
        return [], []
    names, columns = [], []
    b, t = np.divmod(np.arange(n_traj * windows), windows)
    for name in _names(group.attrs.get("field_names")):
        if name not in group:
            continue  # listed, not stored: nothing to read
        d = group[name]
        per_sample, per_step = _flag(path, d, "sample_varying"), _flag(path, d, "time_varying")
        values = np.asarray(d[()], np.float64)
        expected = (*((n_traj,) if per_sample else ()), *((steps,) if per_step else ()))
        if values.shape not in (expected, (*expected, 1)) and not (
            expected == () and values.size == 1
        ):
            raise UserError(
                f"{path}: scalars/{name} has shape {values.shape}; with sample_varying="
                f"{per_sample}, time_varying={per_step} The Well's layout needs {expected or (1,)}"
            )
        values = values.reshape(expected)
        index = (*((b,) if per_sample else ()), *((t,) if per_step else ()))
        columns.append(np.broadcast_to(values[index] if index else values, b.shape))
        names.append(name)
    return names, columns


def read(path: Path, f: h5py.File, attrs: dict) -> WellFile:
    """A Well file as one-step samples; a file that breaks the layout is refused in one line.

    ``attrs`` are the file's attributes as plain values; the returned ``attrs`` add an
    ``equation`` (what a sample is) and the ``boundary_conditions`` the file states.
    """
    attrs = dict(attrs)
    spatial = int(np.asarray(attrs.get("n_spatial_dims", 0)).item())
    grid_type = _text(attrs.get("grid_type", "cartesian"))
    if spatial != 2:
        raise UserError(
            f"{path}: The Well file has n_spatial_dims = {spatial}; scifm's operators are 2-D, "
            "so only 2-D Well datasets are read"
        )
    if grid_type != "cartesian":
        raise UserError(
            f"{path}: The Well file's grid_type is {grid_type!r}; scifm's operators work on "
            "cartesian grids only"
        )
    dimensions = _group(path, f, "dimensions")
    if dimensions is None:
        raise UserError(
            f"{path}: The Well's layout needs a group 'dimensions'; expected {DATASETS}"
        )
    dims = _names(dimensions.attrs.get("spatial_dims"))
    missing = [d for d in ("time", *dims) if d not in dimensions]
    if len(dims) != 2 or missing:
        raise UserError(
            f"{path}: dimensions names spatial_dims {dims} and lacks {missing}; The Well's "
            "layout needs two spatial dims, each a coordinate dataset, and time"
        )
    time = dimensions["time"]
    steps = int(time.shape[-1]) if time.ndim else 0
    grid = tuple(int(dimensions[d].shape[-1]) for d in dims)
    n_traj = int(np.asarray(attrs.get("n_trajectories", 0)).item())
    if n_traj < 1 or steps < 2 or min(grid) < 1:
        raise UserError(
            f"{path}: The Well file holds {n_traj} trajectories of {steps} steps on a "
            f"{grid[0]}x{grid[1]} grid; one-step samples need >= 1 trajectory and >= 2 steps"
        )
    fields = _fields(path, f, n_traj, steps, grid, dims)
    evolving = [x for x in fields if x.per_step]
    if not evolving:
        raise UserError(
            f"{path}: none of The Well file's fields is time_varying, so there is nothing to "
            f"predict (fields: {[n for x in fields for n in x.names] or 'none'})"
        )
    constant = [x for x in fields if not x.per_step]
    windows = steps - 1
    n = n_traj * windows
    inputs = WellSteps(evolving + constant, windows, n, grid, offset=0)
    outputs = WellSteps(evolving, windows, n, grid, offset=1)
    names, columns = _scalars(path, f, n_traj, steps, windows)
    b, t = np.divmod(np.arange(n), windows)
    times = np.asarray(time[()], np.float64)
    times = times[b, t] if times.ndim == 2 else times[t]
    parameters = np.column_stack([*columns, b, times]) if n else np.zeros((0, len(names) + 2))
    bcs, boundaries = [], _group(path, f, "boundary_conditions")
    for name, bc in boundaries.items() if boundaries is not None else ():
        kind = _text(bc.attrs.get("bc_type", "?")).lower()
        bcs.append(f"{name} {kind} on {'+'.join(_names(bc.attrs.get('associated_dims')))}")
    dataset = _text(attrs.get("dataset_name", path.stem))
    attrs.setdefault(
        "equation",
        f"The Well's {dataset}: fields at step t in, at step t+1 out (dt = one stored step); "
        f"boundaries: {', '.join(bcs) or 'not stated'}",
    )
    attrs["boundary_conditions"] = bcs
    return WellFile(
        inputs,
        outputs,
        tuple(n for x in evolving + constant for n in x.names),
        tuple(n for x in evolving for n in x.names),
        parameters,
        (*names, "trajectory", "t"),
        f"the-well:{dataset}",
        attrs,
    )
