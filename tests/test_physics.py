"""The physics loss: exact solutions at round-off, manufactured solutions independent of the
generators, the Poisson identity with the relative L2 error, labels mixed in, a label-free fit,
and its refusals."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm import data, pdes, train

SYSTEMS = {
    "poisson": pdes.Poisson(),
    "advdiff": pdes.AdvectionDiffusion(),
    "helmholtz": pdes.Helmholtz(),
    "darcy": pdes.Darcy(),
}


def _arrays(samples):
    return (
        jnp.asarray(samples.outputs),
        jnp.asarray(samples.inputs),
        jnp.asarray(samples.coefficients),
    )


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("preconditioned", [True, False])
def test_generated_solutions_have_round_off_residual_and_wrong_ones_do_not(name, preconditioned):
    u, f, c = _arrays(SYSTEMS[name].sample(np.arange(4), 0, 32))
    loss = train.physics_loss(name, preconditioned=preconditioned)
    exact = np.asarray(loss.residuals(u, f, c))
    # Darcy's solutions are conjugate-gradient solves to a relative residual of 1e-10
    assert exact.max() < (1e-9 if name == "darcy" else 1e-12)
    scaled = np.asarray(loss.residuals(1.1 * u, f, c))
    np.testing.assert_allclose(scaled, 0.1, rtol=1e-6)  # L is linear: residual 0.1 L u
    shifted = np.asarray(loss.residuals(u + 0.05 * jnp.std(u), f, c))
    assert shifted.min() > 1e-3  # a constant added: the mean mode is not free
    h = u.shape[-1]
    checker = (-1.0) ** (np.arange(h)[:, None] + np.arange(h)[None, :])  # the Nyquist mode
    nyquist = np.asarray(loss.residuals(u + 0.05 * jnp.std(u) * checker, f, c))
    assert nyquist.min() > 1e-3


def test_poisson_residual_is_the_relative_error_without_a_label():
    u, f, c = _arrays(SYSTEMS["poisson"].sample(np.arange(3), 1, 32))
    rng = np.random.default_rng(0)
    pred = u + 0.3 * jnp.std(u) * rng.standard_normal(u.shape)  # any field: noise, mean, Nyquist
    loss = train.physics_loss("poisson")
    np.testing.assert_allclose(
        loss.residuals(pred, f, c), train.relative_l2_per_sample(pred, u), rtol=1e-10
    )


def _grid(h, w):
    x = np.arange(h)[:, None] / h
    y = np.arange(w)[None, :] / w
    return x, y


def test_manufactured_solutions_on_a_non_square_grid():
    """Residuals of closed-form (u, f) pairs, written here from the equations, not generated."""
    x, y = _grid(16, 24)
    tau = 2 * np.pi
    u = np.sin(tau * x) * np.cos(2 * tau * y) + 0.5 * np.cos(tau * (x + 3 * y))
    ux = tau * np.cos(tau * x) * np.cos(2 * tau * y) - 0.5 * tau * np.sin(tau * (x + 3 * y))
    uy = -2 * tau * np.sin(tau * x) * np.sin(2 * tau * y) - 1.5 * tau * np.sin(tau * (x + 3 * y))
    uxx = -(tau**2) * np.sin(tau * x) * np.cos(2 * tau * y) - 0.5 * tau**2 * np.cos(
        tau * (x + 3 * y)
    )
    uyy = -4 * tau**2 * np.sin(tau * x) * np.cos(2 * tau * y) - 4.5 * tau**2 * np.cos(
        tau * (x + 3 * y)
    )
    uxy = -2 * tau**2 * np.cos(tau * x) * np.sin(2 * tau * y) - 1.5 * tau**2 * np.cos(
        tau * (x + 3 * y)
    )
    k11, k22, k12, vx, vy, omega = 0.02, 0.01, 0.004, 0.3, -0.2, 0.7
    f = -(k11 * uxx + 2 * k12 * uxy + k22 * uyy) + vx * ux + vy * uy - omega * u
    c = jnp.asarray([[k11, k22, k12, vx, vy, omega]])
    loss = train.physics_loss("advdiff")
    field = jnp.asarray(u[None, None])
    assert float(loss.residuals(field, jnp.asarray(f[None, None]), c)[0]) < 1e-13
    assert float(loss.residuals(1.01 * field, jnp.asarray(f[None, None]), c)[0]) > 1e-3

    # -div(a grad u) with a = 0.01 (1 + 0.5 cos(2 pi x) sin(2 pi y)): the products stay on the grid
    a = 0.01 * (1 + 0.5 * np.cos(tau * x) * np.sin(tau * y))
    ax = -0.005 * tau * np.sin(tau * x) * np.sin(tau * y)
    ay = 0.005 * tau * np.cos(tau * x) * np.cos(tau * y)
    f = -(a * (uxx + uyy) + ax * ux + ay * uy)
    inputs = jnp.asarray(np.stack([f, a])[None])
    darcy = train.physics_loss("darcy")
    zeros = jnp.zeros((1, 6))
    assert float(darcy.residuals(field, inputs, zeros)[0]) < 1e-13
    assert float(darcy.residuals(1.01 * field, inputs, zeros)[0]) > 1e-3


def test_labels_mix_in_and_nan_marks_unlabelled_without_reaching_the_gradient():
    u, f, c = _arrays(SYSTEMS["darcy"].sample(np.arange(4), 2, 32))
    loss = train.physics_loss("darcy")
    pred = 0.9 * u
    targets = u.at[2:].set(jnp.nan)  # two labelled, two not
    want = loss.residuals(pred, f, c) + jnp.asarray([0.1, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(loss(pred, targets, f, c), jnp.mean(want), rtol=1e-10)
    grad = jax.grad(lambda p: loss(p, targets, f, c))(pred)
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0


def test_unlabelled_keeps_the_inputs_and_the_first_labels():
    samples = SYSTEMS["poisson"].sample(np.arange(5), 3, 16)
    fields = data.FieldSet(samples.inputs, samples.coefficients, samples.outputs, name="p")
    half = train.unlabelled(fields, 2)
    f, c, u = half.take(np.arange(5))
    f0, c0, u0 = fields.take(np.arange(5))
    np.testing.assert_array_equal(f, f0)
    np.testing.assert_array_equal(c, c0)
    np.testing.assert_array_equal(u[:2], u0[:2])
    assert np.isnan(u[2:]).all() and len(half) == 5
    with pytest.raises(ValueError, match="labels must be between 0 and 5, got 6"):
        train.unlabelled(fields, 6)


def test_fit_without_labels_learns_and_selects_by_the_residual(tmp_path):
    """Every training target is NaN: what the model learns comes from the equation alone."""
    system = pdes.Poisson()
    tr = data.FieldSet.load(data.generate(system, 64, 16, 0, tmp_path / "train.h5"))
    va = data.FieldSet.load(data.generate(system, 16, 16, 1, tmp_path / "val.h5"))
    with jax.enable_x64(False):
        model, _ = train.start_model(tr, preset="fno-64k", seed=0)
        before = train.evaluate(model, va)["rel_l2_mean"]
        result = train.fit(
            model,
            train.unlabelled(tr, 0),
            va,
            tmp_path / "run",
            epochs=12,
            batch_size=8,
            lr=3e-3,
            loss=train.physics_loss("poisson"),
            validate_every=3,
        )
        best, _ = train.load(tmp_path / "run")
        after = train.evaluate(best, va)["rel_l2_mean"]
    assert before > 0.9 and after < 0.5 * before
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    residuals = [m["val_residual"] for m in metrics]
    assert result["best_val_residual"] == min(residuals)
    assert result["best_epoch"] == metrics[int(np.argmin(residuals))]["epoch"]
    # for Poisson the residual is the relative error: the two columns agree
    np.testing.assert_allclose(residuals, [m["val_rel_l2"] for m in metrics], rtol=1e-3)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loss"] == "physics(ConstantCoefficients)"


def test_refusals_are_one_line():
    with pytest.raises(ValueError, match="Dirichlet boundary") as e:
        train.physics_loss("pdebench-darcy")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="no physics loss for system 'heat'; scifm knows"):
        train.physics_loss("heat")
    samples = SYSTEMS["darcy"].sample(np.arange(2), 0, 16)
    fields = data.FieldSet(
        samples.inputs, samples.coefficients, samples.outputs, name="d.h5", input_names=("f", "a")
    )
    with pytest.raises(ValueError, match="d.h5 has inputs f\\+a, but the physics loss of "):
        train.physics_loss("poisson").check(fields)


def test_cli_trains_without_labels_and_refuses_what_it_cannot(tmp_path, capsys):
    from scifm.cli import main

    train_h5 = data.generate(pdes.Darcy(), 32, 16, 0, tmp_path / "train.h5")
    val_h5 = data.generate(pdes.Darcy(), 8, 16, 1, tmp_path / "val.h5")

    def run(*args):
        capsys.readouterr()
        with jax.enable_x64(False):
            code = main(["train", "--train", str(train_h5), "--val", str(val_h5), *args])
        return code, *capsys.readouterr()

    code, out, err = run(
        "--physics", "--labels", "4", "--model", "fno-64k", "--epochs", "2", "--batch-size", "8",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, err
    assert "best validation residual" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loss"] == "physics(VariableDiffusion)" and config["labels"] == 4
    for args, message in (
        (["--labels", "3"], "--labels is for --physics"),
        (["--physics", "--loss", "sse"], "--physics trains on the equation's residual; drop"),
        (["--physics", "--labels", "40"], "--labels 40: the training set holds 32 samples"),
    ):
        code, out, err = run(*args, "--out", str(tmp_path / "refused"))
        assert code != 0 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "refused").exists()
