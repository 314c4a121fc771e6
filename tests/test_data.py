"""Dataset files: layout, determinism, atomic and resumable writing, the reference layout."""

import os

import h5py
import numpy as np
import pytest

from scifm import data, pdes


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
def test_same_seed_same_file_whatever_the_chunk_size(system, tmp_path):
    a = data.generate(system, 70, 64, 5, tmp_path / "a.h5", chunk_size=70)
    b = data.generate(system, 70, 64, 5, tmp_path / "b.h5", chunk_size=9)
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
    with pytest.raises(FileExistsError, match="--overwrite"):
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
        assert ds.layout == "reference" and ds.system == system and len(ds) == 5
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
    with pytest.raises(ValueError, match="neither the scifm layout"):
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
    assert 1 <= info["coefficients"]["omega"]["min"] <= info["coefficients"]["omega"]["max"] <= 10
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
