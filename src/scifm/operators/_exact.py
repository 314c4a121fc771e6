"""Exact operators by Taylor mode along every coordinate (no randomness)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._base import AbstractEstimator, ScalarFn, coordinate_derivative, term_values
from ._linear import LinearOperator
from ._split import sparse_derivatives


class Exact(AbstractEstimator):
    """Exact Laplacian, biharmonic and linear operators (the baseline every estimator is checked against; ``key`` is ignored).

    - Laplacian: ``sum_i D^2_{e_i} u``: ``d`` second-order jets along coordinate tangents.
      Cost ``O(d)`` jets (each ~``2`` forward passes of the width-sized network through an
      :class:`AbstractSplitFunction`, else of the whole network), variance 0.
    - Biharmonic: ``sum_i u_iiii + 2 sum_{i<j} u_iijj`` with
      ``D^4_{e_i+e_j} + D^4_{e_i-e_j} = 2 u_iiii + 2 u_jjjj + 12 u_iijj``, i.e.
      ``Lap^2 u = (1 - (d-1)/3) sum_i D^4_{e_i} u + (1/6) sum_{i<j} (D^4_{e_i+e_j} + D^4_{e_i-e_j}) u``:
      ``d^2`` fourth-order jets, ``O(d^2 k^2)`` work for order ``k = 4``. Small ``d`` only.
    - Linear operator: every term by polarisation (``<= 2^(k-1)`` jets of order ``k``).

    ``chunk_size`` bounds how many jets are vectorised at once (memory ``O(chunk)``).
    """

    chunk_size: int = eqx.field(static=True, default=256)

    def _map(self, f, xs):
        n = jax.tree_util.tree_leaves(xs)[0].shape[0]
        return jax.lax.map(f, xs, batch_size=min(self.chunk_size, n))

    def dense_vectors(self, order: int) -> int:
        return 0

    def jets(self, order: int, d: int) -> int:
        return d ** (order // 2)  # d for the Laplacian, d + d(d - 1) = d^2 for the biharmonic

    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array | None = None) -> Array:
        d = x.shape[0]
        return jnp.sum(self._map(lambda i: coordinate_derivative(fn, x, i, 2), jnp.arange(d)))

    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array | None = None) -> Array:
        d = x.shape[0]
        diag = jnp.sum(self._map(lambda i: coordinate_derivative(fn, x, i, 4), jnp.arange(d)))
        if d == 1:
            return diag
        rows, cols = np.triu_indices(d, k=1)
        pairs = jnp.stack([rows, cols], axis=-1).astype(jnp.int32)
        plus = jnp.array([1.0, 1.0], dtype=x.dtype)
        minus = jnp.array([1.0, -1.0], dtype=x.dtype)

        def pair(ij):
            return (
                sparse_derivatives(fn, x, ij, plus, 4)[3]
                + sparse_derivatives(fn, x, ij, minus, 4)[3]
            )

        offdiag = jnp.sum(self._map(pair, pairs))
        return (1.0 - (d - 1) / 3.0) * diag + offdiag / 6.0

    def linear(self, op: LinearOperator, fn: ScalarFn, x: Array, *, key: Array | None = None):
        total = jnp.zeros((), dtype=x.dtype)
        for _, group in op.groups().items():
            total = total + jnp.sum(term_values(group, None, fn, x))
        return total
