"""Stochastic dimension gradient descent (SDGD, Hu et al., arXiv 2307.12306): first-order AD."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ._base import AbstractCoordinateEstimator, ScalarFn, sampled_linear
from ._linear import LinearOperator
from ._sampling import random_subset


def _unit(x: Array, i: Array) -> Array:
    return jnp.zeros_like(x).at[i].set(1.0)


def mixed_partial_backward(fn: ScalarFn, indices: Sequence[Array]) -> ScalarFn:
    """``d_{i_k} ... d_{i_1} fn`` by nesting reverse mode ``k`` times (backward-over-backward)."""
    f = fn
    for i in indices:
        f = (lambda g, j: lambda y: jax.grad(g)(y)[j])(f, i)
    return f


def mixed_partial_forward_over_backward(fn: ScalarFn, indices: Sequence[Array]) -> ScalarFn:
    """``d_{i_k} ... d_{i_1} fn``: one reverse pass, then ``k - 1`` nested JVPs along ``e_i``."""
    first, *rest = indices

    def f(y):
        return jax.grad(fn)(y)[first]

    for i in rest:
        f = (lambda g, j: lambda y: jax.jvp(g, (y,), (_unit(y, j),))[1])(f, i)
    return f


class SDGD(AbstractCoordinateEstimator):
    """Random dimension subsets with first-order AD: the SDGD baseline.

    - Laplacian: draw ``I``, ``|I| = s = num_samples`` coordinates without replacement,
      return ``(d/s) sum_{i in I} u_ii``. Unbiased (each ``i`` is in ``I`` with probability
      ``s/d``). Variance ``(d^2/s) (1 - (s-1)/(d-1)) sigma^2``, ``sigma^2`` the population
      variance of the diagonal ``{u_ii}``; 0 when ``s = d``.
    - Biharmonic: independent subsets ``I``, ``J`` of size ``s``:
      ``(d/s)^2 sum_{i in I, j in J} u_iijj``, unbiased because
      ``P(i in I, j in J) = (s/d)^2``.
    - Linear operator: ``s`` of the ``T_k`` terms of each order ``k`` without replacement,
      weighted ``T_k/s``.

    Each ``u_ii`` costs ``k = 2`` nested reverse passes (``forward_over_backward=False``) or
    a reverse pass and a JVP (``True``), and every pass carries a dense ``d``-vector through
    the first layer: ``O(s * 2^k * width * d)`` per point for order ``k``, with the
    activations of every nesting level kept for the outer gradient. This is the cost that
    Taylor mode removes; it is here as the baseline.
    """

    num_samples: int = eqx.field(static=True)
    forward_over_backward: bool = eqx.field(static=True, default=False)

    def dense_vectors(self, order: int) -> int:
        # s derivatives u_ii for the Laplacian, s^2 u_iijj for the biharmonic, each carrying
        # ``order`` nested dense tangents
        return self.num_samples ** (order // 2) * order

    def jets(self, order: int, d: int) -> int:
        return 0

    def _partial(self, fn: ScalarFn, indices) -> ScalarFn:
        if self.forward_over_backward:
            return mixed_partial_forward_over_backward(fn, indices)
        return mixed_partial_backward(fn, indices)

    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        d, s = x.shape[0], self.num_samples
        idx = random_subset(key, d, s)
        diag = jax.vmap(lambda i: self._partial(fn, (i, i))(x))(idx)
        return (d / s) * jnp.sum(diag)

    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        d, s = x.shape[0], self.num_samples
        ki, kj = jax.random.split(key)
        rows, cols = random_subset(ki, d, s), random_subset(kj, d, s)

        def one(i, j):
            return self._partial(fn, (j, j, i, i))(x)

        vals = jax.vmap(lambda i: jax.vmap(lambda j: one(i, j))(cols))(rows)
        return (d / s) ** 2 * jnp.sum(vals)

    def linear(self, op: LinearOperator, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        def term_fn(group, rows, fn, x):
            ix = jnp.asarray([i for _, i in group], dtype=jnp.int32)
            coef = jnp.asarray([c for c, _ in group], dtype=x.dtype)
            if rows is not None:
                ix, coef = ix[rows], coef[rows]
            k = ix.shape[-1]
            vals = jax.vmap(lambda r: self._partial(fn, [r[m] for m in range(k)])(x))(ix)
            return coef * vals

        return sampled_linear(op, self.num_samples, term_fn, fn, x, key)
