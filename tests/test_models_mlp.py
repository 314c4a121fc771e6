"""The PINN MLP: shapes, its split (first layer) interface, collapsed Taylor mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm.models import MLP
from scifm.operators._jet import collapsed_second_order, jet_head_series


def test_shapes_and_layers():
    net = MLP(7, width=32, depth=4, key=jax.random.key(0))
    assert len(net.weights) == 5 and net.weights[0].shape == (32, 7)
    assert net.weights[-1].shape == (1, 32)
    x = jnp.ones((7,))
    assert net(x).shape == ()
    assert jax.vmap(net)(jnp.ones((3, 7))).shape == (3,)
    np.testing.assert_allclose(net(x), net.head(*net.embed(x)))


def test_embed_series_is_the_taylor_series_of_the_embedding():
    net = MLP(6, width=8, depth=2, key=jax.random.key(1))
    x = jnp.linspace(-1, 1, 6)
    idx, val = jnp.array([0, 4, 4]), jnp.array([1.0, -0.5, 2.0])
    v = jnp.zeros(6).at[idx].add(val)
    series = net.embed_series(x, idx, val, 3)
    _, tangent = jax.jvp(net.embed, (x,), (v,))
    np.testing.assert_allclose(series[0][0], tangent[0], rtol=1e-12)
    np.testing.assert_array_equal(series[1][0], 0.0)  # affine: no higher terms
    np.testing.assert_array_equal(series[2][0], 0.0)


def test_head_taylor2_matches_generic_jets_and_hessian():
    net = MLP(5, width=10, depth=3, key=jax.random.key(2))
    x = jnp.array([0.1, -0.3, 0.5, 0.2, -0.4])
    idx = jnp.array([4, 1, 1])
    one = jnp.ones((1,))
    series = jax.vmap(lambda i: net.embed_series(x, i[None], one, 2))(idx)
    z2 = tuple(jnp.sum(a, axis=0) for a in series[1])
    ours = net.head_taylor2(net.embed(x), series[0], z2)
    generic = collapsed_second_order(net.head, net.embed(x), series[0], z2)
    for a, b in zip(ours, generic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ours[1], jax.grad(net)(x)[idx], rtol=1e-12)
    hess = jax.jit(jax.hessian(net))(x)
    np.testing.assert_allclose(ours[2], jnp.sum(hess[idx, idx]), rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_explicit_head_series_matches_jet(order):
    """Every input coefficient non-zero (not only the first, as for coordinate tangents);
    order 5 falls back to jet."""
    net = MLP(5, width=10, depth=3, key=jax.random.key(2))
    keys = jax.random.split(jax.random.key(3), order + 1)
    z0 = (jax.random.normal(keys[0], (10,)),)
    series = [(jax.random.normal(k, (10,)),) for k in keys[1:]]
    f0, ours = net.head_series(z0, series)
    g0, ref = jet_head_series(net.head, z0, series)
    np.testing.assert_allclose(f0, g0, rtol=1e-12)
    np.testing.assert_allclose(jnp.stack(ours), jnp.stack(ref), rtol=1e-10)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="width and depth"):
        MLP(3, width=0, key=jax.random.key(0))
