"""FCCL+ for fields: the shared basis, the loss terms against NumPy, and the runner."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm import data, federated, models, pdes, train
from scifm.federated import FCCLLoss


def test_features_are_numpys_truncated_orthonormal_spectrum():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 2, 16, 16))
    m = 3
    spectrum = np.fft.rfft2(pred, norm="ortho")
    kept = np.concatenate([spectrum[..., :m, :m], spectrum[..., 16 - m :, :m]], axis=-2)
    flat = kept.reshape(3, -1)
    np.testing.assert_allclose(
        federated.features(jnp.asarray(pred), m),
        np.concatenate([flat.real, flat.imag], 1),
        atol=1e-12,
    )


def test_the_consensus_coordinates_are_uncorrelated():
    rng = np.random.default_rng(1)
    zbar = jnp.asarray(rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12)))  # correlated
    basis = federated.consensus_basis(zbar, 5)
    b = (zbar - zbar.mean(0)) @ basis
    gram = np.asarray(b.T @ b)
    assert basis.shape == (12, 5)
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9 * gram.max())


def _numpy_loss(w, z, zbar, basis):
    """The three terms written again in NumPy, from the module docstring."""
    centre = zbar.mean(0)
    a, b = (z - centre) @ basis, (zbar - centre) @ basis
    sa = (a - a.mean(0)) / (a.std(0) + 1e-6)
    sb = (b - b.mean(0)) / (b.std(0) + 1e-6)
    c = sa.T @ sb / len(a)
    d = np.diag(c)
    cc = ((1 - d) ** 2).sum() + w.off_diagonal * ((c**2).sum() - (d**2).sum())
    amp = ((z - zbar) ** 2).sum(1).mean() / ((zbar - centre) ** 2).sum(1).mean()

    def probs(x):
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = u @ u.T / w.temperature
        np.fill_diagonal(s, -np.inf)
        e = np.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = probs(b), probs(a)
    off = ~np.eye(len(a), dtype=bool)
    kl = np.where(off, p * (np.log(p + 1e-300) - np.log(np.where(off, q, 1))), 0).sum(1).mean()
    return w.correlation * cc + w.amplitude * amp + w.similarity * kl


def test_collaboration_loss_against_numpy_and_zero_at_the_consensus():
    rng = np.random.default_rng(2)
    zbar = rng.normal(size=(24, 10)) @ rng.normal(size=(10, 10))
    z = zbar + 0.3 * rng.normal(size=zbar.shape)
    w = FCCLLoss(correlation=1.0, amplitude=0.7, similarity=0.5, temperature=0.5)
    basis = federated.consensus_basis(jnp.asarray(zbar), 6)
    got = federated.collaboration_loss(w, jnp.asarray(z), jnp.asarray(zbar), basis)
    np.testing.assert_allclose(got, _numpy_loss(w, z, zbar, np.asarray(basis)), rtol=1e-8)
    at_consensus = federated.collaboration_loss(w, jnp.asarray(zbar), jnp.asarray(zbar), basis)
    assert abs(float(at_consensus)) < 1e-6 < float(got)
    for term in ("correlation", "amplitude", "similarity"):  # each term alone is positive
        alone = FCCLLoss(
            **{k: float(k == term) for k in ("correlation", "amplitude", "similarity")}
        )
        assert (
            float(federated.collaboration_loss(alone, jnp.asarray(z), jnp.asarray(zbar), basis))
            > 1e-4
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("fccl")
    pool = data.FieldSet.load(data.generate(pdes.Poisson(), 32, 16, 0, d / "p.h5"))
    helm = data.FieldSet.load(data.generate(pdes.Helmholtz(), 16, 16, 1, d / "h.h5"))
    public = data.FieldSet.load(data.generate(pdes.AdvectionDiffusion(), 16, 16, 2, d / "pub.h5"))
    clients = [pool.subset(np.arange(16), "a"), helm]
    tests = {"a": pool.subset(np.arange(16, 32), "a"), "b": helm}
    return clients, public, tests


def _models(clients):
    # heterogeneous: widths 4 and 6
    return [
        models.OperatorModel(
            models.Normalizer.fit(d), models.FNO(7, 1, w, 2, key=jax.random.key(0))
        )
        for d, w in zip(clients, (4, 6), strict=True)
    ]


def test_fccl_trains_heterogeneous_models_without_reading_public_solutions(world, tmp_path):
    clients, public, tests = world
    result = federated.fccl(
        _models(clients), clients, public, tmp_path / "run", names=["a", "b"],
        loss=FCCLLoss(modes=2, rank=4), rounds=2, local_steps=2, collab_steps=2,
        batch_size=4, public_batch=8, lr=3e-3, evaluate=tests,
    )  # fmt: skip
    assert set(result["test"]) == {"a", "b"} and set(result["test"]["a"]) == {"a", "b"}
    assert all(np.isfinite(v) for e in result["test"].values() for v in e.values())
    assert result["bytes_sent_per_client"] > 0  # the public projections
    # the public solutions are NaN in the run: any use of them would have been NaN
    assert np.isnan(federated.public_inputs(public).outputs).all()


def test_fccl_without_collaboration_is_local_training(world, tmp_path):
    """No collaboration and no distillation: client 0's model is exactly what training it
    alone gives (the federated simulation of that one client, same batches and schedule)."""
    clients, public, tests = world
    fccl_models = _models(clients)
    settings = dict(rounds=2, local_steps=3, batch_size=4, lr=3e-3, seed=0)
    federated.fccl(
        fccl_models, clients, public, tmp_path / "fccl", names=["a", "b"],
        loss=FCCLLoss(correlation=0, amplitude=0, similarity=0, distillation=0, modes=2),
        public_batch=8, **settings,
    )  # fmt: skip
    federated.simulate(fccl_models[0], [clients[0]], tmp_path / "alone", names=["a"], **settings)
    alone, _ = train.load(tmp_path / "alone")
    together, _ = train.load(tmp_path / "fccl" / "models" / "a")  # each client's final model
    a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(together.net)])
    b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(alone.net)])
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert (
        np.max(
            np.abs(b - np.concatenate([np.ravel(x) for x in jax.tree.leaves(fccl_models[0].net)]))
        )
        > 1e-3
    )
