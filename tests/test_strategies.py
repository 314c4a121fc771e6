"""Fine-tuning strategies: each does what it claims, checked by hand on small tensors."""

import math
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scifm import models, train
from scifm.train import make_optimizer, make_train_step
from scifm.train._strategies import importance_rank, largest_magnitudes, spider_weights


def _model():
    net = models.FNO(7, 1, 8, 2, key=jax.random.key(0))
    return models.OperatorModel(models.Normalizer(1.0, np.ones(6)), net)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(4, 1, 16, 16)).astype(np.float32)
    c = rng.uniform(0.5, 1.5, size=(4, 6)).astype(np.float32)
    return f, c, np.roll(f, 1, axis=-1) * 0.5


def _train(strategy, steps=5):
    model = _model()
    optimizer = make_optimizer(strategy)
    state = optimizer.init(eqx.filter(model.net, eqx.is_inexact_array))
    step = make_train_step(optimizer, train.get_loss("relative_l2"))
    new = model
    for k in range(steps):
        new, state, _ = step(new, state, *_batch(k), np.float32(1e-2))
    return model, new, state


def _leaves(model):
    return jax.tree_util.tree_leaves_with_path(eqx.filter(model.net, eqx.is_inexact_array))


def test_last_trains_only_the_projection():
    before, after, _ = _train(train.get_strategy("last"))
    for (path, a), (_, b) in zip(_leaves(before), _leaves(after), strict=True):
        name = jax.tree_util.keystr(path)
        if "project" in name:
            assert not np.array_equal(a, b), name
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)  # bit for bit


def test_magnitude_mask_holds_the_largest_half_fixed():
    assert largest_magnitudes(jnp.array([3.0, -1.0, 2.0, -4.0])).tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert largest_magnitudes(jnp.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [
        [True, True],
        [False, False],
    ]
    assert largest_magnitudes(jnp.array([5.0])).tolist() == [False]  # int(0.5 * 1) = 0 entries
    before, after, _ = _train(train.get_strategy("magnitude"))
    moved = 0
    for (path, a), (_, b) in zip(_leaves(before), _leaves(after), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        frozen = np.asarray(largest_magnitudes(jnp.asarray(a)))
        np.testing.assert_array_equal(a[frozen], b[frozen], err_msg=jax.tree_util.keystr(path))
        moved += np.sum(a[~frozen] != b[~frozen])
    total = sum(np.asarray(a).size for _, a in _leaves(before))
    assert moved > 0.4 * total  # the other half trains


def test_importance_rank_and_weights_by_hand():
    z = jnp.array([[1.0, -2.0], [3.0, 0.0]])
    mean, std = 1.5, math.sqrt((0.25 + 0.25 + 2.25 + 2.25) / 3)  # |z| = 1, 2, 3, 0; N - 1
    expected = [[1 / (1 + math.exp(-(a - mean) / std)) for a in row] for row in ([1, 2], [3, 0])]
    np.testing.assert_allclose(importance_rank(z), expected, rtol=1e-12)
    assert importance_rank(jnp.zeros(3)).tolist() == [0, 0, 0]
    assert importance_rank(jnp.array([-2.0])).tolist() == [0.5]  # 0/0 -> rank 1/2, not NaN
    i_pre = jnp.array([0.2, 0.5, 0.7, 0.4])
    i_ft = jnp.array([0.6, 0.5, 0.3, 0.8])
    # c = 0.6/0.8, 0 (not <), 0, 0.8/1.2; mean of non-zero = (0.75 + 2/3)/2; c/mean, capped at 1
    m = (0.75 + 2 / 3) / 2
    np.testing.assert_allclose(
        spider_weights(i_pre, i_ft), [min(0.75 / m, 1), 0, 0, (2 / 3) / m], rtol=1e-12
    )
    assert spider_weights(i_ft, i_ft).tolist() == [0, 0, 0, 0]  # nothing more important: all 0


def test_spider_blends_the_step_back_towards_the_pretrained_weights():
    theta0 = {"w": jnp.array([1.0, -2.0, 3.0, 0.5]), "b": jnp.array([0.3, -0.1])}
    # inner: plain gradient descent with the learning rate argument, so u = -lr g exactly
    inner = optax.GradientTransformationExtraArgs(
        lambda p: optax.EmptyState(),
        lambda g, s, p=None, *, learning_rate, **e: (
            jax.tree.map(lambda x: -learning_rate * x, g),
            s,
        ),
    )
    opt = train.get_strategy("spider").wrap(inner)
    state = opt.init(theta0)
    grads = [
        {"w": jnp.array([0.5, 0.1, -0.2, 4.0]), "b": jnp.array([1.0, 2.0])},
        {"w": jnp.array([-0.1, 0.3, 0.0, 1.0]), "b": jnp.array([0.5, -0.5])},
    ]
    params, total = theta0, jax.tree.map(jnp.zeros_like, theta0)
    for g in grads:
        updates, state = opt.update(g, state, params, learning_rate=0.1)
        total = jax.tree.map(jnp.add, total, g)
        new = optax.apply_updates(params, updates)
        for k in params:
            c = spider_weights(importance_rank(theta0[k]), importance_rank(total[k]))
            want = (1 - c) * theta0[k] + c * (params[k] - 0.1 * g[k])
            np.testing.assert_allclose(new[k], want, rtol=1e-12, atol=1e-15)
        params = new
    # the big-gradient, small-weight entry w[3] moves; the big-weight, small-gradient w[2] does not
    assert params["w"][3] != theta0["w"][3] and params["w"][2] == theta0["w"][2]


def test_l2sp_adds_the_gradient_of_its_penalty():
    theta0 = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    theta = {"w": jnp.array([1.5, -1.0]), "b": jnp.array(0.0)}
    alpha = 0.3
    opt = train.get_strategy("l2sp", alpha=alpha).wrap(optax.identity())
    state = opt.init(theta0)
    g = {"w": jnp.array([0.1, 0.2]), "b": jnp.array(-0.4)}
    updates, _ = opt.update(g, state, theta)

    def penalty(p):
        return alpha / 2 * sum(jnp.sum((p[k] - theta0[k]) ** 2) for k in p)

    grad_penalty = jax.grad(penalty)(theta)
    for k in theta:
        np.testing.assert_allclose(updates[k], g[k] + grad_penalty[k], rtol=1e-12)
    assert penalty(theta) == pytest.approx(alpha / 2 * (0.25 + 1 + 0.25))


def test_full_is_adam():
    model = _model()
    params = eqx.filter(model.net, eqx.is_inexact_array)
    ours = make_optimizer(train.get_strategy("full"))
    adam = optax.adam(1e-2)
    g = jax.tree.map(jnp.ones_like, params)
    u1, _ = ours.update(g, ours.init(params), params, learning_rate=1e-2)
    u2, _ = adam.update(g, adam.init(params), params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_unknown_strategy_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid strategies: full, last, magnitude, l2sp, spider"):
        train.get_strategy("freeze-all")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "scifm.cli",
            "train",
            "--train",
            "x.h5",
            "--val",
            "y.h5",
            "--out",
            str(tmp_path / "r"),
            "--finetune",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "valid strategies" in r.stderr
