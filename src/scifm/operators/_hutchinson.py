"""Hutchinson trace estimation (HTE, Hu et al., arXiv 2312.14499) with first-order AD."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ._base import AbstractSampledEstimator, ScalarFn


def _hvp_quadratic(fn: ScalarFn, v: Array) -> ScalarFn:
    """``y -> v^T H(y) v`` by forward-over-reverse (a JVP of the gradient)."""

    def f(y):
        return jnp.dot(jax.jvp(jax.grad(fn), (y,), (v,))[1], v)

    return f


class Hutchinson(AbstractSampledEstimator):
    """Random dense directions, derivatives by first-order AD (forward-over-reverse).

    - Laplacian: ``(1/s) sum_n v_n^T H v_n`` with Rademacher ``v_n`` (``s = num_samples``).
      Unbiased for every ``s >= 1`` (``E[v v^T] = I``); variance
      ``(2/s) sum_{i != j} H_ij^2`` (no diagonal contribution, the reason for Rademacher).
    - Biharmonic: ``(1/(3s)) sum_n D^4_{v_n} u`` with Gaussian ``v_n`` (tensor-vector
      products). Unbiased because ``E[v_i v_j v_k v_l] = d_ij d_kl + d_ik d_jl + d_il d_jk``
      gives ``E[D^4_v u] = 3 Lap^2 u``. (Rademacher would give
      ``3 Lap^2 u - 2 sum_i u_iiii``: biased.) Variance ``Var(D^4_v u) / (9 s)``.

    Cost per direction: ``k - 1`` nested JVPs over one reverse pass for order ``k``, each pass
    ``O(width * d)`` in the first layer, i.e. ``O(s 2^(k-1) width d)``: cheaper than SDGD's
    nested reverse passes, but dense in ``d`` (contrast :class:`STDE`; :class:`DenseSTDE` gives
    the same estimates by Taylor mode).
    """

    num_samples: int = eqx.field(static=True)

    def dense_vectors(self, order: int) -> int:
        return self.num_samples * order

    def jets(self, order: int, d: int) -> int:
        return 0

    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        v = jax.random.rademacher(key, (self.num_samples, x.shape[0]), dtype=x.dtype)
        return jnp.mean(jax.vmap(lambda w: _hvp_quadratic(fn, w)(x))(v))

    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        v = jax.random.normal(key, (self.num_samples, x.shape[0]), dtype=x.dtype)

        def fourth(w):
            f2 = _hvp_quadratic(fn, w)

            def f3(y):
                return jax.jvp(f2, (y,), (w,))[1]

            return jax.jvp(f3, (x,), (w,))[1]

        return jnp.mean(jax.vmap(fourth)(v)) / 3.0
