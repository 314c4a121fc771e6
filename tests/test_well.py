"""The Well's HDF5 layout: files written here exactly as its documentation (docs/data_format.md)
gives it, since nothing may be downloaded, read back as one-step samples (step t in, t + 1 out).
"""

from __future__ import annotations

import json

import h5py
import jax
import numpy as np
import pytest

from scifm import data
from scifm._checks import UserError
from scifm.cli import main

B, T, H, W = 3, 5, 12, 10  # trajectories, steps, a non-square grid (x along axis -2)


def _put(group, name, array, sample=True, time=True, dims=(True, True), **extra):
    d = group.create_dataset(name, data=np.asarray(array, "f4"))
    d.attrs["sample_varying"], d.attrs["time_varying"] = sample, time
    if dims is not None:
        d.attrs["dim_varying"] = np.array(dims)
    for k, v in extra.items():
        d.attrs[k] = v
    return d


def _names(names, as_bytes):
    """A list-of-strings attribute as h5py writes a list (variable-length str) or as fixed-length
    bytes (how other writers store it)."""
    return np.array(names, dtype="S") if as_bytes else list(names)


def _write_well(
    path, n_spatial_dims=2, grid_type="cartesian", drop=(), reshape=None, as_bytes=False
):
    """A 2-D Well file: density (scalar), velocity (vector), stress (tensor), a profile that
    varies along x only, a constant permeability per trajectory, a constant and a time-varying
    scalar, periodic x and wall y boundaries. Returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "density": rng.normal(size=(B, T, H, W)),
        "velocity": rng.normal(size=(B, T, H, W, 2)),
        "stress": rng.normal(size=(B, T, H, W, 2, 2)),
        "profile": rng.normal(size=(B, T, H)),
        "permeability": rng.uniform(0.1, 1, size=(B, H, W)),
        "Reynolds": np.array([100.0]),
        "energy": rng.normal(size=(B, T)),
        "time": np.linspace(0.0, 2.0, T),
    }
    arrays = {k: v.astype("f4") for k, v in arrays.items()}
    if reshape:
        arrays.update(reshape)
    with h5py.File(path, "w") as f:
        f.attrs["simulation_parameters"] = _names(["Reynolds"], as_bytes)
        f.attrs["Reynolds"] = 100.0
        f.attrs["dataset_name"] = "example_2d"
        f.attrs["grid_type"] = grid_type.encode() if as_bytes else grid_type
        f.attrs["n_spatial_dims"] = n_spatial_dims
        f.attrs["n_trajectories"] = B
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _names(["x", "y"], as_bytes)
        _put(dims, "time", arrays["time"], sample=False, time=True, dims=None)
        _put(dims, "x", np.linspace(0, 1, H, endpoint=False), sample=False, time=False, dims=None)
        _put(dims, "y", np.linspace(0, 1, W, endpoint=False), sample=False, time=False, dims=None)
        bcs = f.create_group("boundary_conditions")
        for name, kind, axis, n in (("x_periodic", "PERIODIC", "x", H), ("y_wall", "WALL", "y", W)):
            g = bcs.create_group(name)
            g.attrs["associated_dims"], g.attrs["associated_fields"] = _names([axis], as_bytes), []
            g.attrs["bc_type"], g.attrs["sample_varying"], g.attrs["time_varying"] = kind, 0, 0
            mask = np.zeros(n, bool)
            mask[[0, -1]] = True
            g["mask"], g["values"] = mask, np.zeros(2, "f4")
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = _names(["Reynolds", "energy"], as_bytes)
        _put(scalars, "Reynolds", arrays["Reynolds"], sample=False, time=False, dims=None)
        _put(scalars, "energy", arrays["energy"], sample=True, time=True, dims=None)
        t0, t1, t2 = (f.create_group(g) for g in ("t0_fields", "t1_fields", "t2_fields"))
        t0.attrs["field_names"] = _names(["density", "profile", "permeability"], as_bytes)
        _put(t0, "density", arrays["density"])
        _put(t0, "profile", arrays["profile"], dims=(True, False))
        _put(t0, "permeability", arrays["permeability"], time=False)
        t1.attrs["field_names"] = _names(["velocity"], as_bytes)
        _put(t1, "velocity", arrays["velocity"])
        t2.attrs["field_names"] = _names(["stress"], as_bytes)
        _put(t2, "stress", arrays["stress"], symmetric=False, antisymmetric=False)
        for name in drop:
            del f[name]
    return arrays


def _state(a, b, t):
    """The time-varying channels at trajectory b, step t, in the order the reader gives them."""
    return np.stack(
        [
            a["density"][b, t],
            a["profile"][b, t][:, None].repeat(W, axis=1),
            a["velocity"][b, t, :, :, 0],
            a["velocity"][b, t, :, :, 1],
            *(a["stress"][b, t, :, :, i, j] for i in range(2) for j in range(2)),
        ]
    )


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_well_file_reads_back_as_one_step_samples_exactly_as_written(tmp_path, as_bytes):
    path = tmp_path / "example_2d_train.hdf5"
    a = _write_well(path, as_bytes=as_bytes)
    state = ("density", "profile", "velocity_x", "velocity_y")
    state += ("stress_xx", "stress_xy", "stress_yx", "stress_yy")
    with data.open(path) as ds:
        assert ds.layout is data.Layout.WELL and ds.system == "the-well:example_2d"
        assert ds.input_names == (*state, "permeability") and ds.output_names == state
        assert len(ds) == B * (T - 1) and ds.grid == (H, W)
        assert ds.parameter_names == ("Reynolds", "energy", "trajectory", "t")
        for i in (0, 3, 4, 11):  # sample i is trajectory i // (T - 1) at step i % (T - 1)
            b, t = divmod(i, T - 1)
            expected = np.concatenate([_state(a, b, t), a["permeability"][b][None]])
            np.testing.assert_array_equal(ds.inputs[i], expected)
            np.testing.assert_array_equal(ds.outputs[i], _state(a, b, t + 1))
            np.testing.assert_array_equal(
                ds.parameters[i], [100.0, a["energy"][b, t], b, a["time"][t]]
            )
        np.testing.assert_array_equal(ds.inputs[2:7][:, 0], ds.inputs[:][2:7, 0])
        np.testing.assert_array_equal(ds.coefficients, 0.0)
        summary = data.summary(ds)
        assert "x_periodic periodic on x" in summary["equation"]
        assert "y_wall wall on y" in summary["equation"]
    fields = data.FieldSet.load(path)
    index = np.array([9, 1, 9, 0, 5])  # any order, repeats: as training batches read
    f, c, u = fields.take(index)
    for row, i in enumerate(index):
        b, t = divmod(int(i), T - 1)
        np.testing.assert_array_equal(u[row], _state(a, b, t + 1))
        np.testing.assert_array_equal(f[row, -1], a["permeability"][b])
    assert c.shape == (5, 6)


def test_inspect_and_plot_a_well_file(tmp_path, capsys):
    path = tmp_path / "example.hdf5"
    _write_well(path)
    out = tmp_path / "summary.json"
    assert main(["inspect", str(path), "--json", str(out), "--png", str(tmp_path / "s.png")]) == 0
    summary = json.loads(out.read_text())
    assert summary["layout"] == "the-well" and summary["n"] == B * (T - 1)
    assert summary["output_names"][2:4] == ["velocity_x", "velocity_y"]
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "the-well" in capsys.readouterr().out


def test_an_operator_trains_on_a_well_file_from_the_command_line(tmp_path, capsys):
    train_file, val_file = tmp_path / "train.hdf5", tmp_path / "valid.hdf5"
    _write_well(train_file)
    _write_well(val_file)
    run = tmp_path / "run"
    args = ["train", "--train", str(train_file), "--val", str(val_file), "--model", "fno-64k"]
    with jax.enable_x64(False):
        assert main([*args, "--epochs", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    hyper = json.loads((run / "model.json").read_text())
    assert hyper["input_names"][-1] == "permeability" and len(hyper["output_names"]) == 8
    assert np.isfinite(json.loads((run / "result.json").read_text())["best_val_rel_l2"])


BROKEN = {
    "3-d": (
        {"n_spatial_dims": 3},
        "The Well file has n_spatial_dims = 3; scifm's operators are 2-D, so only 2-D Well "
        "datasets are read",
    ),
    "spherical": ({"grid_type": "spherical"}, "The Well file's grid_type is 'spherical'"),
    "field-shape": (
        {"reshape": {"velocity": np.zeros((B, T, H, W), "f4")}},
        f"t1_fields/velocity has shape ({B}, {T}, {H}, {W}) (float32); with sample_varying=True, "
        f"time_varying=True, dim_varying=[True, True] The Well's layout needs real numbers of "
        f"shape ({B}, {T}, {H}, {W}, 2)",
    ),
    "listed-but-absent": (
        {"drop": ("t2_fields/stress",)},
        "t2_fields lists field 'stress' in field_names but holds no dataset of that name",
    ),
    "no-dimensions": ({"drop": ("dimensions",)}, "The Well's layout needs a group 'dimensions'"),
    "one-step": (
        {"reshape": {"time": np.zeros(1, "f4")}},
        f"The Well file holds {B} trajectories of 1 steps on a {H}x{W} grid; one-step samples "
        "need >= 1 trajectory and >= 2 steps",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_malformed_well_files_are_refused_in_one_line(tmp_path, case):
    path = tmp_path / "bad.hdf5"
    changes, message = BROKEN[case]
    _write_well(path, **changes)
    with pytest.raises(UserError) as e:
        data.open(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_well_file_where_nothing_evolves_is_refused(tmp_path):
    path = tmp_path / "static.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["n_spatial_dims"], f.attrs["n_trajectories"] = 2, 2
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"], dims["x"], dims["y"] = np.arange(3.0), np.arange(4.0), np.arange(4.0)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["a"]
        _put(t0, "a", np.ones((2, 4, 4)), time=False)
    with pytest.raises(UserError, match=r"none of The Well file's fields is time_varying.*\['a'\]"):
        data.open(path)
