"""Darcy flow, the first system with a field input, and fine-tuning a pre-trained model on it
through an adapter: the solver against an independent finite-difference check, the file's
named channels, the normaliser on fields, and the adapter's promise (at the start it is the
pre-trained model; afterwards it has learned what the coefficient field adds)."""

import csv
import json

import h5py
import jax
import numpy as np
import pytest

from scifm import data, models, pdes, train
from scifm._checks import UserError
from scifm.cli import main
from scifm.pdes import _darcy, _spectral


def _streams(seed, indices):
    """Each sample's own random stream, as the generator draws it (see scifm.pdes._base)."""
    return [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(i),))) for i in indices
    ]


def _finite_difference_residual(system, indices, seed, resolution):
    """``||A_h u - f|| / ||f||`` with ``A_h`` the second-order flux form of ``-div(a grad u)``,
    ``a`` evaluated exactly at the cell faces (between grid points, where the generator never
    looks): an independent discretisation, whose residual on the stored solution is its own
    truncation error, O(h^2)."""
    s = system.sample(np.asarray(indices), seed, resolution)
    rngs = _streams(seed, indices)
    for r, i in zip(rngs, indices, strict=True):  # the draws in the generator's order
        system.source.draw(r, int(i))
    sigma = np.array([system.draw(r)[0] for r in rngs])
    amplitudes = np.stack([system.permeability.draw(r) for r in rngs])
    h = 1.0 / resolution
    x = np.arange(resolution) * h
    np.testing.assert_allclose(s.inputs[:, 1], system.permeability_at(amplitudes, sigma, x, x))
    a_x = system.permeability_at(amplitudes, sigma, x + h / 2, x)  # a(x_{i+1/2}, y_j)
    a_y = system.permeability_at(amplitudes, sigma, x, x + h / 2)
    f, u = s.inputs[:, 0], s.outputs[:, 0]
    flux_x = a_x * (np.roll(u, -1, 1) - u) / h
    flux_y = a_y * (np.roll(u, -1, 2) - u) / h
    au = -((flux_x - np.roll(flux_x, 1, 1)) + (flux_y - np.roll(flux_y, 1, 2))) / h
    return np.linalg.norm(au - f, axis=(1, 2)) / np.linalg.norm(f, axis=(1, 2))


def test_solution_satisfies_an_independent_finite_difference_scheme_at_second_order():
    system = pdes.Darcy(sigma_range=(0.5, 1.0))
    residuals = [_finite_difference_residual(system, [0, 1, 2], 0, r) for r in (32, 64, 128)]
    ratios = residuals[0] / residuals[1], residuals[1] / residuals[2]
    # h^2: each halving of h divides the residual by about 4 (measured 3.8-3.9)
    for ratio in ratios:
        assert np.all((ratio > 3.5) & (ratio < 4.5)), ratios
    assert np.all(residuals[2] < 1e-2)


def test_conjugate_gradients_reach_their_tolerance_on_the_spectral_operator():
    system = pdes.Darcy(sigma_range=(1.0, 1.0))  # contrast ~ e^(2 * 3) ~ 400
    s = system.sample(np.arange(4), 3, 32)
    f, a, u = s.inputs[:, 0], s.inputs[:, 1], s.outputs[:, 0]
    keep = _spectral.band_mask(32)
    keep[0, 0] = False
    residual = _darcy.darcy_operator(a, _spectral.rfft2(u), keep) - _spectral.rfft2(f)
    relative = np.linalg.norm(residual, axis=(1, 2)) / np.linalg.norm(
        _spectral.rfft2(f), axis=(1, 2)
    )
    assert np.all(relative < 10 * _darcy.RTOL), relative
    np.testing.assert_allclose(u.mean(axis=(1, 2)), 0, atol=1e-12)
    assert np.all(s.parameters[:, 1] > 50)  # the contrast it was solved at
    np.testing.assert_allclose(s.coefficients[:, 0], a.mean(axis=(1, 2)))
    np.testing.assert_array_equal(s.coefficients[:, 2:], 0)


def test_the_same_seed_is_the_same_continuous_problem_at_every_resolution():
    system = pdes.Darcy()
    coarse, fine = (system.sample(np.arange(2), 5, r) for r in (32, 64))
    # a is a smooth function evaluated on each grid: the fine grid's even points are the coarse
    np.testing.assert_allclose(fine.inputs[:, 1, ::2, ::2], coarse.inputs[:, 1], rtol=1e-12)
    np.testing.assert_array_equal(fine.parameters[:, 0], coarse.parameters[:, 0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: pdes.Darcy(kappa=0.0), "kappa must be > 0 (a positive permeability), got 0.0"),
        (lambda: pdes.Darcy(sigma_range=(1.0, 0.5)), "sigma_range"),
        (lambda: pdes.Darcy(sigma_range=(-0.1, 0.5)), "sigma_range"),
        (lambda: _darcy.LogNormalField(length_scale=0), "length_scale must be > 0, got 0"),
    ],
)
def test_bad_darcy_settings_are_refused(make, message):
    with pytest.raises(UserError) as e:
        make()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_generate_darcy_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "d.h5"
    args = ["generate", "darcy", "--n", "2", "--resolution", "16", "--out", str(out)]
    assert main([*args, "--eig", "1,2"]) == 2
    assert "--eig does not apply to darcy (its range options: --sigma)" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--sigma", "0.2,0.4"]) == 0
    with data.open(out) as ds:
        assert 0.2 <= ds.parameters[:, 0].min() <= ds.parameters[:, 0].max() <= 0.4


def test_generated_file_names_its_channels_and_reads_back(tmp_path):
    path = data.generate(pdes.Darcy(), 6, 16, 0, tmp_path / "darcy.h5")
    with h5py.File(path) as f:
        assert list(f["inputs"].attrs["names"]) == ["f", "a"]
        assert list(f["outputs"].attrs["names"]) == ["u"]
        assert f["inputs"].shape == (6, 2, 16, 16) and f["outputs"].shape == (6, 1, 16, 16)
        assert "div(a(x) grad u)" in f.attrs["equation"]
    with data.open(path) as ds:
        assert ds.system == "darcy" and ds.input_names == ("f", "a")
        info = data.summary(ds)
        data.plot_samples(ds, tmp_path / "d.png", 2)
    assert info["input_names"] == ["f", "a"] and "field a (first 6)" in info
    assert 0.003 < info["field a (first 6)"]["min"] < info["field a (first 6)"]["max"] < 0.1
    fields = data.FieldSet.load(path)
    assert fields.input_names == ("f", "a") and fields.inputs.shape == (6, 2, 16, 16)


def _rewrite(path, names=None, drop_names=False):
    with h5py.File(path, "a") as f:
        if drop_names:
            del f["inputs"].attrs["names"]
        if names is not None:
            f["inputs"].attrs["names"] = names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"drop_names": True},
            "inputs has 2 channels but no attribute 'names' naming them (e.g. ['f', 'a']); only "
            "a 1-channel inputs may omit it",
        ),
        (
            {"names": ["f", "f"]},
            "inputs has 2 channels but names ['f', 'f']; expected 2 distinct non-empty names",
        ),
        (
            {"names": ["f", "a", "b"]},
            "inputs has 2 channels but names ['f', 'a', 'b']; expected 2 distinct non-empty names",
        ),
    ],
)
def test_unnamed_or_misnamed_channels_are_refused_in_one_line(tmp_path, capsys, change, message):
    path = data.generate(pdes.Darcy(), 2, 16, 0, tmp_path / "darcy.h5")
    _rewrite(path, **change)
    with pytest.raises(UserError) as e:
        data.open(path)
    assert str(e.value) == f"{path}: {message}"
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not path.with_suffix(".png").exists()


def test_fields_of_different_channels_do_not_mix(tmp_path):
    darcy = data.FieldSet.load(data.generate(pdes.Darcy(), 2, 16, 0, tmp_path / "d.h5"))
    poisson = data.FieldSet.load(data.generate(pdes.Poisson(), 2, 16, 0, tmp_path / "p.h5"))
    with pytest.raises(UserError, match=r"cannot mix datasets of different channels"):
        data.FieldSet.concatenate([darcy, poisson])


def test_normaliser_keeps_the_symmetry_of_the_equation_with_a_field_input(tmp_path):
    """``(s f, s a)`` has the solution of ``(f, a)``: scaling the source, the coefficient field
    and the coefficient table together gives the network the same inputs, so the same answer."""
    fields = data.FieldSet.load(data.generate(pdes.Darcy(), 4, 16, 0, tmp_path / "d.h5"))
    normalizer = models.Normalizer.fit(fields)
    assert normalizer.field_scale.shape == (1,) and normalizer.source
    net = models.FNO(2 + 6, 1, 8, 4, key=jax.random.key(0))
    model = models.OperatorModel(normalizer, net, ("f", "a"), ("u",))
    f, c = np.asarray(fields.inputs, np.float64), np.asarray(fields.coefficients, np.float64)
    u = jax.vmap(model)(f, c)
    for s in (0.1, 7.0):
        np.testing.assert_allclose(jax.vmap(model)(s * f, s * c), u, rtol=1e-9)
    a_only = f.copy()
    a_only[:, 1] *= 7.0  # the field alone scaled: another problem, another input
    assert not np.allclose(jax.vmap(model)(a_only, c), u)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A small FNO trained on Poisson (the 7-channel layout: f and 6 coefficients), and Darcy
    training and validation files at the same resolution."""
    d = tmp_path_factory.mktemp("adapter")
    poisson_train = data.generate(pdes.Poisson(), 256, 32, 0, d / "poisson.h5")
    poisson_val = data.generate(pdes.Poisson(), 32, 32, 1, d / "poisson_val.h5")
    darcy_train = data.generate(pdes.Darcy(), 128, 32, 2, d / "darcy.h5")
    darcy_val = data.generate(pdes.Darcy(), 32, 32, 3, d / "darcy_val.h5")
    with jax.enable_x64(False):
        code = main(
            [
                "train",
                *("--train", str(poisson_train), "--val", str(poisson_val)),
                *("--model", "fno-64k", "--epochs", "8", "--out", str(d / "pre")),
            ]
        )
    assert code == 0
    return d / "pre", darcy_train, darcy_val


@pytest.mark.xdist_group("darcy-adapter")  # one worker: the pre-training fixture runs once
def test_a_model_of_other_channels_is_refused_without_an_adapter(pretrained, capsys):
    pre, darcy_train, darcy_val = pretrained
    args = ["train", "--train", str(darcy_train), "--val", str(darcy_val), "--init", str(pre)]
    with jax.enable_x64(False):
        assert main([*args, "--out", str(pre.parent / "refused")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has channels f+a -> u but the model takes f -> u" in err
    assert "--adapter" in err
    assert not (pre.parent / "refused").exists()
    with jax.enable_x64(False):
        assert main(["train", *args[1:5], "--adapter", "--out", str(pre.parent / "r2")]) == 2
    assert "needs --init" in capsys.readouterr().err


@pytest.mark.xdist_group("darcy-adapter")
def test_adapter_starts_as_the_pretrained_model_and_fine_tuning_learns_the_field(
    pretrained, capsys
):
    pre, darcy_train, darcy_val = pretrained
    with jax.enable_x64(False):
        model, _ = train.load(pre)
        fields, val = data.FieldSet.load(darcy_train), data.FieldSet.load(darcy_val)
        adapted, _ = train.start_model(fields, init=pre, adapter=True)
        # at the start the coefficient field's lift column is zero: the adapted model is the
        # pre-trained one reading f and the mean permeability (its zero-shot prediction)
        np.testing.assert_allclose(
            jax.vmap(adapted)(val.inputs, val.coefficients),
            jax.vmap(model)(val.inputs[:, :1], val.coefficients),
            rtol=1e-5,
            atol=1e-6 * np.abs(val.outputs).max(),
        )
        for kept, pre_trained in zip(adapted.net.spectral, model.net.spectral, strict=True):
            assert all(
                np.array_equal(x, y)
                for x, y in zip(jax.tree.leaves(kept), jax.tree.leaves(pre_trained), strict=True)
            )
        zero_shot = train.evaluate(adapted, val)["rel_l2_mean"]
        out = pre.parent / "adapted"
        code = main(
            [
                "train",
                *("--train", str(darcy_train), "--val", str(darcy_val), "--init", str(pre)),
                *("--adapter", "--epochs", "8", "--out", str(out)),
            ]
        )
        assert code == 0
        assert "adapter: new inputs a (zero lift columns)" in capsys.readouterr().out
        tuned, _ = train.load(out)
    result = json.loads((out / "result.json").read_text())
    # measured 0.33 against 0.56 zero-shot (fno-64k, 8 epochs each; 0.59x)
    assert result["best_val_rel_l2"] < 0.7 * zero_shot, (result["best_val_rel_l2"], zero_shot)
    config = json.loads((out / "config.json").read_text())
    assert config["adapter"]["new_inputs"] == ["a"] and config["adapter"]["dropped_inputs"] == []
    # what the adapter added has been learned: the field's lift column is no longer zero
    a_column = adapted.input_names.index("a")
    assert np.all(adapted.net.lift.weight[:, a_column] == 0)
    assert np.abs(tuned.net.lift.weight[:, a_column]).max() > 1e-3
    assert tuned.input_names == ("f", "a")


def test_a_checkpoint_from_before_named_channels_loads_as_source_to_solution(tmp_path):
    """model.json of earlier versions has no channel names (and its normaliser no field
    scales, so the weight file is the same): such a run loads as f -> u."""
    fields = data.FieldSet.load(data.generate(pdes.Poisson(), 4, 16, 0, tmp_path / "p.h5"))
    model, _ = train.start_model(fields, preset="fno-64k")
    train.save(tmp_path / "run", model, preset="fno-64k")
    hyper = json.loads((tmp_path / "run" / "model.json").read_text())
    for key in ("input_names", "output_names", "source"):
        del hyper[key]
    (tmp_path / "run" / "model.json").write_text(json.dumps(hyper))
    loaded, _ = train.load(tmp_path / "run")
    assert (loaded.input_names, loaded.output_names) == (("f",), ("u",))
    np.testing.assert_array_equal(
        jax.vmap(loaded)(fields.inputs, fields.coefficients),
        jax.vmap(model)(fields.inputs, fields.coefficients),
    )


def test_a_study_reaches_a_field_input_task_through_the_adapter(tmp_path, capsys):
    """The shipped darcy study at toy size: the pre-trained model (f and constant
    coefficients) is scored zero-shot on Darcy and fine-tuned on f and a, beside scratch and
    the label-free physics method (n = 0) and its mixed-label variant."""
    sweep = tmp_path / "sweep"
    settings = [
        "resolution=16",
        'presets=["fno-64k"]',
        "n_values=[8]",
        "lr_grid=[1e-3]",
        "steps=6",
        "validations=2",
        "n_val=8",
        "n_test=8",
        "pretrain.n=32",
        "pretrain.n_val=8",
        "pretrain.epochs=2",
    ]
    args = ["sweep", "darcy", *sum((["--set", s] for s in settings), []), "--out", str(sweep)]
    with jax.enable_x64(False):
        assert main(args) == 0
    capsys.readouterr()
    with open(sweep / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["task"] == "darcy"]
    assert sorted((r["method"], r["n"]) for r in rows) == [
        ("finetune", "8"),
        ("physics", "0"),
        ("physics", "8"),
        ("scratch", "8"),
        ("zero-shot", "0"),
    ]
    assert all(0 < float(r["test_rel_l2"]) < 10 for r in rows)
    assert all(float(r["val_residual"]) > 0 for r in rows if r["method"] == "physics")
    finetuned = next(r["run"] for r in rows if r["method"] == "finetune")
    hyper = json.loads((sweep / finetuned / "model.json").read_text())
    assert hyper["input_names"] == ["f", "a"]


# PDEBench's 2-D Darcy flow file, written here in its layout (nu (N, H, W), tensor (N, 1, H, W),
# coordinates; beta in the file name), since nothing may be downloaded.
def _write_pdebench(path, n=5, h=12, w=10, **replace):
    rng = np.random.default_rng(1)
    datasets = {
        "nu": rng.uniform(0.1, 1.0, size=(n, h, w)).astype("f4"),
        "tensor": rng.normal(size=(n, 1, h, w)).astype("f4"),
        "x-coordinate": ((np.arange(w) + 0.5) / w).astype("f4"),
        "y-coordinate": ((np.arange(h) + 0.5) / h).astype("f4"),
        "t-coordinate": np.linspace(0, 1, 10).astype("f4"),
    } | replace
    with h5py.File(path, "w") as f:
        for name, array in datasets.items():
            if array is not None:
                f[name] = array
    return datasets


def test_pdebench_darcy_file_reads_back_exactly_as_written(tmp_path):
    path = tmp_path / "2D_DarcyFlow_beta0.01_Train.hdf5"
    written = _write_pdebench(path)
    with data.open(path) as ds:
        assert ds.layout is data.Layout.PDEBENCH and ds.system == "pdebench-darcy"
        assert ds.input_names == ("f", "a") and ds.output_names == ("u",)
        assert ds.grid == (12, 10) and len(ds) == 5
        np.testing.assert_array_equal(ds.inputs[1:4][:, 1], written["nu"][1:4])
        np.testing.assert_array_equal(ds.inputs[2][1], written["nu"][2])
        np.testing.assert_array_equal(ds.inputs[:][:, 0], np.float32(0.01))
        np.testing.assert_array_equal(ds.outputs[:], written["tensor"])
        np.testing.assert_allclose(
            ds.coefficients[:, 0], written["nu"].astype(np.float64).mean(axis=(1, 2))
        )
        np.testing.assert_array_equal(ds.parameters[:, 0], 0.01)
        assert "Dirichlet" in data.summary(ds)["equation"]
    fields = data.FieldSet.load(path)
    np.testing.assert_array_equal(fields.inputs[:, 1], written["nu"])
    np.testing.assert_array_equal(fields.outputs, written["tensor"])


@pytest.mark.parametrize(
    ("name", "replace", "message"),
    [
        (
            "darcy.hdf5",
            {},
            "a PDEBench Darcy file names its forcing beta in the file name (e.g. "
            "2D_DarcyFlow_beta1.0_Train.hdf5), and this name has none; rename the file",
        ),
        (
            "2D_DarcyFlow_beta1.0_Train.hdf5",
            {"tensor": np.zeros((4, 1, 12, 10), "f4")},
            "tensor has shape (4, 1, 12, 10) but nu (5, 12, 10); the pdebench-darcy layout "
            "needs (N, 1, H, W) with nu's N, H and W",
        ),
        (
            "2D_DarcyFlow_beta1.0_Train.hdf5",
            {"tensor": None},
            "the pdebench-darcy layout needs a dataset 'tensor', which the file lacks",
        ),
        (
            "2D_DarcyFlow_beta1.0_Train.hdf5",
            {"nu": np.zeros((5, 1, 12, 10), "f4")},
            "nu has shape (5, 1, 12, 10); the pdebench-darcy layout needs (N, H, W)",
        ),
    ],
)
def test_malformed_pdebench_files_are_refused_in_one_line(tmp_path, name, replace, message):
    path = tmp_path / name
    _write_pdebench(path, **replace)
    with pytest.raises(UserError) as e:
        data.open(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)
    assert "\n" not in str(e.value)
