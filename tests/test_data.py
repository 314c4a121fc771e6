"""Dataset files: layout, determinism, atomic and resumable writing, the reference layout."""

import os

import h5py
import jax
import numpy as np
import pytest

from scifm import data, pdes
from scifm.models import FNO, Normalizer, OperatorModel


def _contents(path):
    with h5py.File(path, "r") as f:
        arrays = {k: f[k][...] for k in ("inputs", "outputs", "coefficients", "parameters")}
        attrs = {k: v for k, v in f.attrs.items() if k != "created"}
    return arrays, attrs


def _assert_same(a, b):
    (arrays_a, attrs_a), (arrays_b, attrs_b) = _contents(a), _contents(b)
    for k in arrays_a:
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k])
    assert attrs_a.keys() == attrs_b.keys()
    for k in attrs_a:
        assert np.all(attrs_a[k] == attrs_b[k]), k


@pytest.mark.parametrize(
    "system", [pdes.Poisson(), pdes.AdvectionDiffusion(), pdes.Helmholtz()], ids=lambda s: s.name
)
def test_same_seed_same_file_whatever_the_chunk_size_and_threads(system, tmp_path):
    a = data.generate(system, 70, 64, 5, tmp_path / "a.h5", chunk_size=70, workers=1)
    b = data.generate(system, 70, 64, 5, tmp_path / "b.h5", chunk_size=9, workers=3)
    c = data.generate(system, 70, 64, 6, tmp_path / "c.h5", chunk_size=70)
    _assert_same(a, b)
    with data.open(a) as da, data.open(c) as dc:
        assert not np.array_equal(da.outputs[:], dc.outputs[:])


def test_prefix_of_a_larger_dataset_is_the_smaller_dataset(tmp_path):
    small = data.generate(pdes.Poisson(), 8, 32, 1, tmp_path / "s.h5")
    large = data.generate(pdes.Poisson(), 20, 32, 1, tmp_path / "l.h5", chunk_size=3)
    with data.open(small) as s, data.open(large) as big:
        np.testing.assert_array_equal(s.outputs[:], big.outputs[:8])


def test_layout_and_attributes(tmp_path):
    path = data.generate(pdes.AdvectionDiffusion(ratio_range=(1, 2)), 6, 32, 0, tmp_path / "d.h5")
    with h5py.File(path) as f:
        assert f["inputs"].shape == (6, 1, 32, 32) and f["inputs"].dtype == np.float32
        assert f["outputs"].shape == (6, 1, 32, 32)
        assert list(f["coefficients"].attrs["names"]) == list(pdes.COEFFICIENT_NAMES)
        assert list(f["parameters"].attrs["names"]) == ["e", "theta", "phi", "psi"]
        assert f.attrs["system"] == "advdiff" and f.attrs["complete"]
        assert f.attrs["equation"] == pdes.EQUATION
        assert f.attrs["resolution"] == 32 and f.attrs["seed"] == 0 and f.attrs["n"] == 6
    with data.open(path) as ds:
        assert ds.ranges() == {"ratio_range": [1, 2], "eig_range": [1.0, 5.0]}
        assert np.all((ds.parameters[:, 3] >= 1 - 1e-6) & (ds.parameters[:, 3] <= 2 + 1e-6))
        assert np.all(ds.coefficients[:, 5] == 0)


def test_stored_source_is_the_equation_source(tmp_path):
    """inputs[:, 0] is exactly f: solving the stored f again gives the stored u (to float32)."""
    path = data.generate(pdes.Helmholtz(), 4, 32, 3, tmp_path / "h.h5")
    with data.open(path) as ds:
        f, u = ds.inputs[:, 0].astype(float), ds.outputs[:, 0].astype(float)
        _, u_again = pdes.solve(f, ds.coefficients)
    assert np.abs(u_again - u).max() < 1e-5 * np.abs(u).max()


def test_existing_output_is_refused_and_overwrite_replaces_it(tmp_path):
    path = data.generate(pdes.Poisson(), 2, 16, 0, tmp_path / "x.h5")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        data.generate(pdes.Poisson(), 2, 16, 1, path)
    data.generate(pdes.Poisson(), 3, 16, 1, path, overwrite=True)
    with data.open(path) as ds:
        assert len(ds) == 3


def test_interrupted_generation_leaves_only_a_partial_file_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "r.h5"
    reference = data.generate(pdes.Poisson(), 10, 16, 2, tmp_path / "ref.h5")
    calls = []

    def die_after_two_chunks(k):
        calls.append(k)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data.generate(pdes.Poisson(), 10, 16, 2, out, chunk_size=3, progress=die_after_two_chunks)
    assert not out.exists()
    partial = tmp_path / "r.h5.partial"
    with h5py.File(partial) as f:
        assert f.attrs["n_written"] == 6 and not f.attrs["complete"]
    with pytest.raises(ValueError, match="not a complete scifm dataset"):
        data.open(partial)

    resumed = []
    data.generate(pdes.Poisson(), 10, 16, 2, out, chunk_size=3, progress=resumed.append)
    assert resumed == [6, 3, 1]  # picked up after the 6 finished samples
    assert not partial.exists()
    _assert_same(out, reference)


def test_a_chunk_that_fails_on_a_solver_thread_stops_the_file_at_the_chunks_before_it(
    tmp_path, monkeypatch
):
    reference = data.generate(pdes.Poisson(), 12, 16, 2, tmp_path / "ref.h5")
    solve = pdes.Poisson.sample

    def fail_on_the_third_chunk(self, indices, *args, **kwargs):
        if indices[0] == 6:
            raise FloatingPointError("solver failed")
        return solve(self, indices, *args, **kwargs)

    monkeypatch.setattr(pdes.Poisson, "sample", fail_on_the_third_chunk)
    out = tmp_path / "r.h5"
    with pytest.raises(FloatingPointError, match="solver failed"):
        data.generate(pdes.Poisson(), 12, 16, 2, out, chunk_size=3, workers=2)
    with h5py.File(tmp_path / "r.h5.partial") as f:
        assert f.attrs["n_written"] == 6 and not f.attrs["complete"]
    monkeypatch.setattr(pdes.Poisson, "sample", solve)
    resumed = []
    data.generate(pdes.Poisson(), 12, 16, 2, out, chunk_size=3, progress=resumed.append)
    assert resumed == [6, 3, 3]
    _assert_same(out, reference)


def test_a_partial_file_of_other_arguments_is_not_resumed(tmp_path):
    out = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt):
        data.generate(
            pdes.Poisson(),
            10,
            16,
            2,
            out,
            chunk_size=3,
            progress=lambda k: (_ for _ in ()).throw(KeyboardInterrupt),
        )
    steps = []
    data.generate(pdes.Poisson(), 10, 16, 9, out, chunk_size=5, progress=steps.append)  # other seed
    assert steps == [5, 5]
    _assert_same(out, data.generate(pdes.Poisson(), 10, 16, 9, tmp_path / "ref.h5"))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(n=0), ValueError, "n must be"),
        (dict(resolution=31), ValueError, "even integer"),
        (dict(resolution=8), ValueError, ">= 16"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(workers=0), ValueError, "workers must be an integer >= 1"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs, error, message):
    args = dict(system=pdes.Poisson(), n=2, resolution=16, seed=0, out=tmp_path / "x.h5") | kwargs
    with pytest.raises(error, match=message):
        data.generate(**args)
    assert list(tmp_path.iterdir()) == []


def test_missing_or_unwritable_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.generate(pdes.Poisson(), 2, 16, 0, tmp_path / "nope" / "x.h5")
    # /proc refuses new files even to root; a read-only directory refuses other users
    with pytest.raises(PermissionError, match="cannot write"):
        data.generate(pdes.Poisson(), 2, 16, 0, "/proc/scifm-test.h5")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):
        with pytest.raises(PermissionError, match="cannot write"):
            data.generate(pdes.Poisson(), 2, 16, 0, locked / "x.h5")
    assert list(locked.iterdir()) == []


def _write_reference(path, fields, tensor, other=None):
    with h5py.File(path, "w") as f:
        f["fields"] = fields.astype("f4")
        f["tensor"] = tensor.astype("f4")
        if other is not None:
            f["other"] = other.astype("f4")


@pytest.mark.parametrize(
    "system, p, to_ours",
    [
        ("poisson", 3, lambda t: np.c_[t, np.zeros((len(t), 3))]),
        ("advdiff", 5, lambda t: np.c_[t, np.zeros((len(t), 1))]),
        ("helmholtz", 2, lambda t: np.c_[t[:, 0], t[:, 0], np.zeros((len(t), 3)), t[:, 1]]),
    ],
)
def test_reads_the_reference_layout(tmp_path, system, p, to_ours):
    rng = np.random.default_rng(0)
    fields, tensor = rng.normal(size=(5, 2, 16, 16)), rng.uniform(size=(5, p))
    other = rng.uniform(size=(5, 1)) if system == "advdiff" else None
    _write_reference(tmp_path / "ref.h5", fields, tensor, other)
    with data.open(tmp_path / "ref.h5") as ds:
        assert ds.layout is data.Layout.REFERENCE and ds.system == system and len(ds) == 5
        assert ds.inputs.shape == (5, 1, 16, 16)
        np.testing.assert_array_equal(ds.inputs[1:3], fields[1:3, :1].astype("f4"))
        np.testing.assert_array_equal(ds.outputs[4], fields[4, 1:2].astype("f4"))
        np.testing.assert_allclose(ds.coefficients, to_ours(tensor.astype("f4")))
        if other is not None:
            np.testing.assert_allclose(ds.parameters[:, 0], other[:, 0].astype("f4"))


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.open(tmp_path / "none.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        data.open(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="matches no known dataset layout"):
        data.open(tmp_path / "other.h5")
    path = data.generate(pdes.Poisson(), 2, 16, 0, tmp_path / "p.h5")
    with pytest.raises(ValueError, match="not 'helmholtz'"):
        data.open(path, system="helmholtz")


def test_model_inputs_broadcast_coefficients():
    inputs = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    coefficients = np.array([[1.0, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
    x = data.model_inputs(inputs, coefficients)
    assert x.shape == (2, 7, 4, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], inputs[:, 0])
    assert np.all(x[1, 3] == 9)


def test_summary_and_picture(tmp_path):
    path = data.generate(pdes.Helmholtz(), 3, 16, 0, tmp_path / "h.h5")
    with data.open(path) as ds:
        info = data.summary(ds)
        png = data.plot_samples(ds, tmp_path / "h.png", 2)
    assert info["n"] == 3 and info["system"] == "helmholtz"
    assert info["layout"] == "scifm" and info["grid"] == [16, 16]
    assert 1 <= info["coefficients"]["omega"]["min"] <= info["coefficients"]["omega"]["max"] <= 10
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Malformed files: each is refused when opened, in one line naming the file, what is wrong and
# what the layout expects, and opening it writes nothing.

SCIFM_DATASETS = "inputs (N, C, H, W), outputs (N, K, H, W), coefficients (N, 6), parameters (N, Q)"
REFERENCE_DATASETS = (
    "fields (N, 2, H, W), tensor (N, P) with P one of 3 (poisson), 5 (advdiff), 2 (helmholtz), "
    "optional other (N,)"
)


def _write_scifm(path, n=4, grid=(16, 16), attrs=None, **replace):
    """A complete scifm file written by hand; ``replace`` swaps a dataset (None drops it),
    ``attrs`` sets file attributes (None deletes one)."""
    rng = np.random.default_rng(0)
    datasets = {
        "inputs": rng.normal(size=(n, 1, *grid)),
        "outputs": rng.normal(size=(n, 1, *grid)),
        "coefficients": rng.uniform(0.01, 0.1, size=(n, 6)),
        "parameters": rng.uniform(size=(n, 2)),
    } | replace
    with h5py.File(path, "w") as f:
        for name, array in datasets.items():
            if array is not None:
                f[name] = np.asarray(array, "f4")
        if "coefficients" in f:
            f["coefficients"].attrs["names"] = list(pdes.COEFFICIENT_NAMES)
        if "parameters" in f:
            f["parameters"].attrs["names"] = [f"q{j}" for j in range(f["parameters"].shape[-1])]
        f.attrs.update(
            format=data.FORMAT, format_version=data.FORMAT_VERSION, system="poisson", complete=True
        )
        for name, value in (attrs or {}).items():
            if value is None:
                del f.attrs[name]
            else:
                f.attrs[name] = value
    return path


def _write_other(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, array in datasets.items():
            f[name] = array


def _field(*shape):
    return np.zeros(shape)


MALFORMED = {
    "scifm-without-coefficients": (
        lambda p: _write_scifm(p, coefficients=None),
        "{p}: the scifm layout needs a dataset 'coefficients', which the file lacks (it holds "
        f"['inputs', 'outputs', 'parameters']); expected {SCIFM_DATASETS}",
    ),
    "outputs-of-another-sample-count": (
        lambda p: _write_scifm(p, outputs=_field(5, 1, 16, 16)),
        "{p}: outputs has shape (5, 1, 16, 16) but inputs (4, 1, 16, 16); the scifm layout "
        "needs (N, C, H, W) and (N, K, H, W) with the same N, H and W",
    ),
    "outputs-on-another-grid": (
        lambda p: _write_scifm(p, outputs=_field(4, 1, 16, 8)),
        "{p}: outputs has shape (4, 1, 16, 8) but inputs (4, 1, 16, 16); the scifm layout "
        "needs (N, C, H, W) and (N, K, H, W) with the same N, H and W",
    ),
    "3-d-fields": (
        lambda p: _write_scifm(p, inputs=_field(4, 16, 16), outputs=_field(4, 16, 16)),
        "{p}: inputs has shape (4, 16, 16); the scifm layout needs (N, C, H, W): the input "
        "fields of each sample on an H x W grid",
    ),
    "two-channel-fields": (
        lambda p: _write_scifm(p, inputs=_field(4, 2, 16, 16), outputs=_field(4, 2, 16, 16)),
        "{p}: inputs has 2 channels but no attribute 'names' naming them (e.g. ['f', 'a']); "
        "only a 1-channel inputs may omit it",
    ),
    "fewer-coefficient-rows": (
        lambda p: _write_scifm(p, coefficients=np.ones((3, 6))),
        "{p}: coefficients has 3 rows for 4 samples; the scifm layout needs one row per sample, "
        "(4, 6): k11, k22, k12, vx, vy, omega",
    ),
    "more-coefficient-rows": (
        lambda p: _write_scifm(p, coefficients=np.ones((5, 6))),
        "{p}: coefficients has 5 rows for 4 samples; the scifm layout needs one row per sample, "
        "(4, 6): k11, k22, k12, vx, vy, omega",
    ),
    "five-coefficient-columns": (
        lambda p: _write_scifm(p, coefficients=np.ones((4, 5))),
        "{p}: coefficients has 5 columns; the scifm layout needs (4, 6): k11, k22, k12, vx, vy, "
        "omega",
    ),
    "fewer-parameter-rows": (
        lambda p: _write_scifm(p, parameters=np.ones((2, 2))),
        "{p}: parameters has 2 rows for 4 samples; the scifm layout needs one row per sample, "
        "(4, Q): the physics parameters of each sample",
    ),
    "not-written-by-scifm": (
        lambda p: _write_scifm(p, attrs={"format": None}),
        "{p} is not a scifm dataset: attribute format is None, expected 'scifm-pde' (as scifm "
        "generate writes)",
    ),
    "newer-format-version": (
        lambda p: _write_scifm(p, attrs={"format_version": 2}),
        "{p}: format version 2; this scifm reads version 1",
    ),
    "incomplete": (
        lambda p: _write_scifm(p, attrs={"complete": False, "n_written": 2}),
        "{p} is not a complete scifm dataset (2 of 4 samples written); rerun the scifm generate "
        "command that wrote it to finish it",
    ),
    "zero-samples": (
        lambda p: _write_scifm(p, n=0),
        "{p} holds no samples (inputs has shape (0, 1, 16, 16)); a dataset needs N >= 1",
    ),
    "no-known-layout": (
        lambda p: _write_other(p, x=np.zeros(3), solution=np.zeros((4, 16, 16))),
        "{p} matches no known dataset layout: it holds ['solution', 'x']; known layouts are "
        f"scifm: {SCIFM_DATASETS}; reference: {REFERENCE_DATASETS}; pdebench-darcy: "
        "nu (N, H, W) the coefficient, tensor (N, 1, H, W) the solution, the forcing beta in "
        "the file name (2D_DarcyFlow_beta1.0_Train.hdf5); the-well: groups t0_fields, "
        "t1_fields, t2_fields of fields (B, T, H, W[, D[, D]]) named by field_names, dimensions "
        "(time (T), x (H), y (W)), optional scalars and boundary_conditions",
    ),
    "reference-tensor-rows": (
        lambda p: _write_reference(p, np.zeros((5, 2, 16, 16)), np.ones((3, 3))),
        "{p}: tensor has 3 rows for 5 samples; the reference layout needs one row per sample, "
        "(5, P): P one of 3 (poisson), 5 (advdiff), 2 (helmholtz)",
    ),
    "reference-tensor-width": (
        lambda p: _write_reference(p, np.zeros((5, 2, 16, 16)), np.ones((5, 4))),
        "{p}: tensor has 4 columns, which names no system; the reference layout knows "
        "P = 3 (poisson), 5 (advdiff), 2 (helmholtz)",
    ),
    "reference-3-d-fields": (
        lambda p: _write_reference(p, np.zeros((5, 16, 16)), np.ones((5, 3))),
        "{p}: fields has shape (5, 16, 16); the reference layout needs (N, 2, H, W): the source "
        "f and the solution u of each sample on an H x W grid",
    ),
    "reference-zero-samples": (
        lambda p: _write_reference(p, np.zeros((0, 2, 16, 16)), np.ones((0, 3))),
        "{p} holds no samples (fields has shape (0, 2, 16, 16)); a dataset needs N >= 1",
    ),
    "reference-other-rows": (
        lambda p: _write_reference(p, np.zeros((5, 2, 16, 16)), np.ones((5, 5)), np.ones((4, 1))),
        "{p}: other has shape (4, 1); the reference layout needs (5,) or (5, 1): the advection "
        "ratio psi of each sample",
    ),
}


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_file_is_refused_when_opened_in_one_line(tmp_path, case):
    write, message = MALFORMED[case]
    path = tmp_path / "bad.h5"
    write(path)
    before = _snapshot(tmp_path)
    for load in (data.open, data.FieldSet.load):
        with pytest.raises(ValueError) as refused:
            load(path)
        assert str(refused.value) == message.format(p=path)
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed
    h5py.File(path, "r+").close()  # and the refusal closed the file


def test_a_valid_hand_written_file_opens(tmp_path):
    """The files the malformed cases start from are valid: each case breaks one thing."""
    path = _write_scifm(tmp_path / "ok.h5")
    with data.open(path) as ds:
        assert ds.layout is data.Layout.SCIFM and len(ds) == 4 and ds.resolution == 16
        assert ds.parameter_names == ("q0", "q1")
    assert len(data.FieldSet.load(path)) == 4
    with pytest.raises(ValueError, match=r"holds 4 samples; cannot take 5 \(between 1 and 4\)"):
        data.FieldSet.load(path, limit=5)


def test_non_square_grid_is_h_by_w_and_an_operator_maps_it(tmp_path):
    path = _write_scifm(tmp_path / "wide.h5", grid=(32, 16))
    with data.open(path) as ds:
        assert ds.grid == (32, 16) and data.summary(ds)["grid"] == [32, 16]
        assert "grid=32x16" in repr(ds)
        with pytest.raises(ValueError, match="the grid is 32x16, not square"):
            ds.resolution  # noqa: B018
    fields = data.FieldSet.load(path)
    assert fields.grid == (32, 16)
    with pytest.raises(ValueError, match="the grid is 32x16, not square"):
        fields.resolution  # noqa: B018
    f, c, u = fields.take(np.arange(2))
    model = OperatorModel(Normalizer.fit(fields), FNO(7, 1, 4, 4, key=jax.random.key(0)))
    assert jax.vmap(model)(f, c).shape == u.shape == (2, 1, 32, 16)


def test_fieldset_refuses_arrays_that_do_not_fit_together():
    f, c = np.zeros((4, 1, 8, 8)), np.zeros((4, 6))
    with pytest.raises(ValueError, match=r"inputs \(4, 1, 8, 8\) and outputs \(4, 1, 8, 4\)"):
        data.FieldSet(f, c, np.zeros((4, 1, 8, 4)))
    with pytest.raises(ValueError, match=r"coefficients \(4, 5\) for 4 samples"):
        data.FieldSet(f, np.zeros((4, 5)), f)
    with pytest.raises(ValueError, match="cannot mix fields on different grids: 8x4, 8x8"):
        data.FieldSet.concatenate(
            [data.FieldSet(f, c, f), data.FieldSet(f[..., :4], c, f[..., :4])]
        )


def test_lazy_and_in_memory_fields_agree(tmp_path):
    tr = data.generate(pdes.Poisson(), 24, 16, 0, tmp_path / "train.h5")
    eager, lazy = data.FieldSet.load(tr), data.FieldSet.load(tr, memory_budget=0)
    index = np.array([17, 3, 20, 3])
    for a, b in zip(eager.take(index), lazy.take(index), strict=True):
        np.testing.assert_array_equal(a, b)
    assert isinstance(eager.inputs, np.ndarray) and not isinstance(lazy.inputs, np.ndarray)


def test_epoch_batches_shuffle_every_epoch():
    first, second = data.epoch_batches(10, 4, 0, 1), data.epoch_batches(10, 4, 0, 2)
    assert [len(b) for b in first] == [4, 4]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert [len(b) for b in data.epoch_batches(3, 16, 0, 1)] == [3]
