"""Federated algorithms against hand computations and against centralised training.

Tiny FNOs on 16x16 Poisson data: what is checked is arithmetic (exact in float64), except the
attack test, which measures test errors after honest and attacked training.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm import UserError, data, federated, models, pdes, train
from scifm.federated import Krum, Mean, Median, Scaffold, TrimmedMean


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("fed")
    stored = data.FieldSet.load(data.generate(pdes.Poisson(), 48, 16, 3, d / "poisson.h5"))
    # in float64, so that sums in another order (a batch of clients) agree to 1e-12
    f, c, u = stored.take(np.arange(len(stored)))
    return data.FieldSet(f.astype(np.float64), c, u.astype(np.float64), "poisson")


def _tiny(fields, seed=0):
    net = models.FNO(7, 1, 4, 2, key=jax.random.key(seed))
    return models.OperatorModel(models.Normalizer.fit(fields), net)


def _part(pool, lo, hi, name):
    return pool.subset(np.arange(lo, hi), name)


def _weights(model):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(model.net)])


# -- aggregation rules, by hand ------------------------------------------------------------------
UPDATES = np.array(
    [[1.0, -2.0, 0.5], [2.0, 0.0, 0.5], [3.0, 1.0, -1.0], [100.0, 4.0, 0.0], [4.0, -1.0, 2.0]]
)
WEIGHTS = np.array([1.0, 2.0, 1.0, 1.0, 5.0])


def test_mean_weighted_and_equal_by_hand():
    weighted = federated.Mean()(jnp.asarray(UPDATES), jnp.asarray(WEIGHTS))
    hand = (1 * UPDATES[0] + 2 * UPDATES[1] + UPDATES[2] + UPDATES[3] + 5 * UPDATES[4]) / 10
    np.testing.assert_allclose(weighted, hand, rtol=1e-14)
    equal = federated.Mean(weighted=False)(jnp.asarray(UPDATES), jnp.asarray(WEIGHTS))
    np.testing.assert_allclose(equal, UPDATES.sum(axis=0) / 5, rtol=1e-14)


def test_median_and_trimmed_mean_by_hand():
    np.testing.assert_allclose(Median()(jnp.asarray(UPDATES), WEIGHTS), [3.0, 0.0, 0.5])
    np.testing.assert_allclose(Median()(jnp.asarray(UPDATES[:4]), WEIGHTS[:4]), [2.5, 0.5, 0.25])
    # beta 0.2 of 5 clients: one value cut at each end per coordinate
    trimmed = TrimmedMean(beta=0.2)(jnp.asarray(UPDATES), WEIGHTS)
    np.testing.assert_allclose(trimmed, [(2 + 3 + 4) / 3, (-1 + 0 + 1) / 3, (0 + 0.5 + 0.5) / 3])
    # beta below 1/K cuts nothing: the plain mean
    np.testing.assert_allclose(
        TrimmedMean(beta=0.1)(jnp.asarray(UPDATES), WEIGHTS), UPDATES.mean(axis=0)
    )


def test_krum_and_multi_krum_by_hand():
    x = jnp.asarray(UPDATES)
    k, f = 5, 1
    d = ((UPDATES[:, None] - UPDATES[None]) ** 2).sum(-1)
    hand = []
    for i in range(k):
        others = np.sort(np.delete(d[i], i))
        hand.append(others[: k - f - 2].sum())
    np.testing.assert_allclose(Krum(bad=f).scores(x), hand, rtol=1e-12)
    order = np.argsort(hand)
    np.testing.assert_allclose(Krum(bad=f)(x, WEIGHTS), UPDATES[order[0]])
    np.testing.assert_allclose(
        Krum(bad=f, select=3)(x, WEIGHTS), UPDATES[order[:3]].mean(axis=0), rtol=1e-14
    )
    assert order[-1] == 3  # the outlier scores worst


def test_complex_weights_aggregate_on_real_and_imaginary_parts():
    tree = {"w": jnp.asarray([[1 + 2j, 0j], [3 - 1j, 1j], [10 + 10j, 5j]]), "b": jnp.ones((3, 2))}
    rows, unflatten = federated.flatten_clients(tree)
    assert rows.shape == (3, 6) and not jnp.iscomplexobj(rows)
    out = unflatten(Median()(rows, jnp.ones(3)))
    np.testing.assert_allclose(out["w"], [3 + 2j, 1j])
    np.testing.assert_allclose(out["b"], [1.0, 1.0])


@pytest.mark.parametrize(
    ("rule", "clients", "bad", "message"),
    [
        (Median(), 4, 2, "median over 4 clients withstands at most 1 bad"),
        (TrimmedMean(beta=0.2), 5, 2, "withstands at most 1 bad"),
        (Krum(bad=1), 4, 1, "needs at least 5 clients"),
        (Krum(bad=1), 7, 2, "declares 1 bad client(s) but the federation has 2"),
        (Krum(bad=1, select=5), 5, 1, "at most K - f = 4"),
    ],
)
def test_rules_refuse_more_bad_clients_than_they_withstand(rule, clients, bad, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rule.check(clients, bad)
    Mean().check(clients, clients)  # the baseline an attack breaks is never refused


def test_bad_settings_are_refused():
    with pytest.raises(UserError, match=r"beta must be in \[0, 0.5\)"):
        TrimmedMean(beta=0.5)
    with pytest.raises(UserError, match="krum bad must be an integer >= 0"):
        Krum(bad=-1)
    with pytest.raises(UserError, match="fedprox mu must be a finite number >= 0"):
        federated.FedProx(mu=-1.0)


# -- algorithms against centralised training and against their formulas --------------------------
def test_fedavg_with_one_client_is_centralised_training_step_for_step(pool, tmp_path):
    train_set = _part(pool, 0, 24, "one")
    model = _tiny(train_set)
    rounds, local, batch, lr = 3, 4, 6, 3e-3
    result = federated.simulate(
        model, [train_set], tmp_path / "fed", rounds=rounds, local_steps=local,
        batch_size=batch, lr=lr, seed=5,
    )  # fmt: skip
    fed_model, _ = train.load(tmp_path / "fed")
    # centralised: scifm's own train step over the same batch stream and schedule
    step = train.make_train_step(train.make_optimizer(), train.relative_l2)
    opt_state = train.make_optimizer().init(eqx.filter(model.net, eqx.is_inexact_array))
    central = model
    total = rounds * local
    index = federated.client_batches(len(train_set), batch, 5, 0, total)
    for s in range(total):
        f, c, u = train_set.take(index[s])
        central, opt_state, _ = step(
            central,
            opt_state,
            f,
            c,
            u,
            np.float32(train.cosine_lr(lr, total, s)),  # as fit
        )
    diff = np.max(np.abs(_weights(fed_model) - _weights(central)))
    assert diff < 1e-10 * np.max(np.abs(_weights(central)))
    assert np.max(np.abs(_weights(fed_model) - _weights(model))) > 1e-3  # it did train
    assert result["rounds"] == rounds


def test_fedavg_of_identical_clients_is_one_client(pool, tmp_path):
    one = _part(pool, 0, 24, "same")
    model = _tiny(one)
    settings = dict(rounds=2, local_steps=3, batch_size=6, lr=3e-3)
    federated.simulate(model, [one], tmp_path / "one", shuffle_seeds=[7], **settings)
    federated.simulate(
        model, [one, one, one], tmp_path / "three", names=["a", "b", "c"],
        shuffle_seeds=[7, 7, 7], **settings,
    )  # fmt: skip
    a, _ = train.load(tmp_path / "one")
    b, _ = train.load(tmp_path / "three")
    np.testing.assert_allclose(_weights(b), _weights(a), rtol=0, atol=1e-10)
    assert np.max(np.abs(_weights(b) - _weights(model))) > 1e-3  # it did train


def test_scaffold_control_variates_follow_the_formula(pool):
    """One round of two clients with local SGD: the new c_k equals the paper's option II,
    c_k - c + (x - y_k) / sum(lr), computed here from the weights alone; the server's c moves by
    the mean change; the new x is x + mean(y_k - x)."""
    clients = [_part(pool, 0, 12, "a"), _part(pool, 12, 24, "b")]
    model = _tiny(clients[0])
    params = eqx.filter(model.net, eqx.is_inexact_array)
    alg, opt = Scaffold(), federated.SGD()
    rng = np.random.default_rng(0)
    # a non-zero starting state: c and c_k drawn at random
    server = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape) * 0.1), params)
    c_k = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=(2, *x.shape)) * 0.1), params)
    opt_state = jax.tree.map(
        lambda x: jnp.broadcast_to(x, (2, *jnp.shape(x))), opt.transformation().init(params)
    )
    index = [federated.client_batches(12, 4, s, 0, 3) for s in (0, 1)]
    taken = [d.take(i.reshape(-1)) for d, i in zip(clients, index, strict=True)]
    batches = tuple(
        np.stack([t[j] for t in taken]).reshape(2, 3, 4, *taken[0][j].shape[1:]) for j in range(3)
    )
    lrs = np.asarray([0.05, 0.03, 0.01])
    new_model, new_server, (_, new_c), _ = federated.federated_round(
        alg, Mean(weighted=False), federated.NoAttack(), opt, train.relative_l2, model, server,
        (opt_state, c_k), batches, lrs, jnp.ones(2), jnp.zeros(2, bool), jax.random.key(0),
    )  # fmt: skip
    # by hand: SGD with corrected gradients, then option II from the weights
    static = eqx.filter(model.net, eqx.is_inexact_array, inverse=True)

    @jax.jit
    def gradient(p, f, c, u):
        def loss(p):
            m = eqx.tree_at(lambda m: m.net, model, eqx.combine(p, static))
            return train.relative_l2(jax.vmap(m)(f, c), u)

        return jax.grad(loss)(p)

    ys = []
    for k in range(2):
        p = params
        ck = jax.tree.map(lambda x, k=k: x[k], c_k)
        for t in range(3):
            g = gradient(p, batches[0][k, t], batches[1][k, t], batches[2][k, t])
            p = jax.tree.map(lambda w, g, c, ci, t=t: w - lrs[t] * (g + c - ci), p, g, server, ck)
        ys.append(p)
        hand_ck = jax.tree.map(
            lambda ci, c, x, y: ci - c + (x - y) / lrs.sum(), ck, server, params, p
        )
        got = jax.tree.map(lambda x, k=k: x[k], new_c)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(hand_ck), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    hand_c = jax.tree.map(lambda c, new, old: c + jnp.mean(new - old, 0), server, new_c, c_k)
    for a, b in zip(jax.tree.leaves(new_server), jax.tree.leaves(hand_c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    hand_x = jax.tree.map(lambda y0, y1: (y0 + y1) / 2, *ys)
    got_x = eqx.filter(new_model.net, eqx.is_inexact_array)
    for a, b in zip(jax.tree.leaves(got_x), jax.tree.leaves(hand_x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_batched_and_mapped_clients_give_the_same_round(pool):
    clients = [_part(pool, 0, 12, "a"), _part(pool, 12, 24, "b"), _part(pool, 24, 36, "c")]
    model = _tiny(clients[0])
    alg, opt = federated.FedAvg(), federated.Adam()
    state, server = federated.init_clients(alg, opt, model.net, 3)
    index = [federated.client_batches(12, 4, s, 0, 1) for s in range(3)]
    taken = [d.take(i.reshape(-1)) for d, i in zip(clients, index, strict=True)]
    batches = tuple(
        np.stack([t[j] for t in taken]).reshape(3, 1, 4, *taken[0][j].shape[1:]) for j in range(3)
    )
    args = (alg, Mean(), federated.NoAttack(), opt, train.relative_l2, model, server,
            state, batches, np.asarray([1e-3]), jnp.ones(3), jnp.asarray([False, True, False]),
            jax.random.key(3))  # fmt: skip
    mapped = federated.federated_round(*args, False)
    batched = federated.federated_round(*args, True)
    for a, b in zip(jax.tree.leaves(mapped), jax.tree.leaves(batched), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_fedprox_adds_the_proximal_gradient(pool):
    model = _tiny(pool)
    params = eqx.filter(model.net, eqx.is_inexact_array)
    moved = jax.tree.map(lambda x: x + 0.5, params)
    g = jax.grad(lambda p: federated.FedProx(mu=0.3).penalty(p, params))(moved)
    for leaf in jax.tree.leaves(g):
        np.testing.assert_allclose(leaf, 0.3 * 0.5)


def test_fedadam_server_step_is_adam_on_the_negative_update():
    params = {"w": jnp.asarray([1.0, -1.0])}
    update = {"w": jnp.asarray([0.2, -0.4])}
    alg = federated.FedAdam(lr=0.1, b1=0.9, b2=0.99, eps=1e-3)
    new, _ = alg.server_step(params, update, alg.init_server(params), None, None)
    g = -np.asarray([0.2, -0.4])
    m, v = 0.1 * g / (1 - 0.9), 0.01 * g**2 / (1 - 0.99)
    np.testing.assert_allclose(new["w"], [1.0, -1.0] - 0.1 * m / (np.sqrt(v) + 1e-3), rtol=1e-6)


def test_normaliser_of_one_client_is_its_own_fit(pool):
    one = federated.federated_normalizer([pool])
    fit = models.Normalizer.fit(pool)
    np.testing.assert_allclose(one.source_scale, fit.source_scale)
    np.testing.assert_allclose(one.coefficient_scale, fit.coefficient_scale)


# -- refusals ------------------------------------------------------------------------------------
def test_simulate_refuses_clients_it_cannot_serve(pool, tmp_path):
    a = _part(pool, 0, 24, "a")
    model = _tiny(a)
    small = data.FieldSet.load(data.generate(pdes.Poisson(), 8, 32, 1, tmp_path / "p32.h5"))
    with pytest.raises(UserError, match="client b holds fields .* every client of one federation"):
        federated.simulate(model, [a, small], tmp_path / "x", names=["a", "b"], batch_size=4)
    with pytest.raises(UserError, match="client a holds 24 samples, fewer than the batch size 32"):
        federated.simulate(model, [a], tmp_path / "x", names=["a"], batch_size=32)
    with pytest.raises(UserError, match="median over 2 clients withstands at most 0"):
        federated.simulate(
            model, [a, a], tmp_path / "x", names=["a", "b"], aggregator=Median(), bad=[1]
        )
    assert not (tmp_path / "x").exists()


# -- robustness, measured ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_byzantine_client_breaks_fedavg_and_not_the_robust_rules(tmp_path):
    """Five clients of one distribution, one of them sending its update reversed and scaled
    by 5: the mean is dragged away (error worse than the initial model's), the median and
    Krum stay within 25% of honest training's error."""
    pool = data.FieldSet.load(data.generate(pdes.Poisson(), 232, 16, 4, tmp_path / "p.h5"))
    clients = [pool.subset(np.arange(40 * k, 40 * k + 40), f"c{k}") for k in range(5)]
    test = {"test": pool.subset(np.arange(200, 232), "test")}
    model = federated.initial_model(clients, preset="fno-64k", seed=1)
    initial = float(np.mean(train.errors(model, test["test"])))
    settings = dict(rounds=8, local_steps=4, batch_size=8, lr=3e-3, evaluate=test)
    names = [c.name for c in clients]

    def error(name, **kw):
        r = federated.simulate(model, clients, tmp_path / name, names=names, **settings, **kw)
        return r["test"]["test"]

    attack = dict(attack=federated.SignFlip(scale=5.0), bad=[2])
    honest = error("honest")
    broken = error("mean", **attack)
    median = error("median", aggregator=Median(), **attack)
    krum = error("krum", aggregator=Krum(bad=1), **attack)
    assert honest < 0.8 * initial  # honest training learns
    assert broken > initial  # the attacked mean is worse than not training at all
    assert median < 1.25 * honest and krum < 1.25 * honest
