"""Stochastic Taylor derivative estimators (STDE, Shi et al., NeurIPS 2024, arXiv 2412.00088).

Both contract derivative tensors by univariate Taylor mode (``jet``): ``D^k_v u =
sum u_{i_1..i_k} v_{i_1} .. v_{i_k}`` is one ``k``-jet with input series ``(v, 0, ..., 0)``,
about ``k^2/2`` forward passes and ``k`` of memory, instead of ``2^(k-1)`` nested
first-order passes. :class:`STDE` draws sparse coordinate tangents (Taylor-mode SDGD),
:class:`DenseSTDE` dense random directions (Taylor-mode HTE).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from scifm._checks import UserError

from ._base import (
    AbstractCoordinateEstimator,
    AbstractSampledEstimator,
    ScalarFn,
    coordinate_derivative,
    sampled_linear,
    term_values,
)
from ._jet import dense_derivatives
from ._linear import LinearOperator
from ._sampling import random_subset
from ._split import sparse_derivatives, sparse_second_order_sum


class STDE(AbstractCoordinateEstimator):
    """Sparse (coordinate) tangents by univariate Taylor mode: the Taylor-mode SDGD.

    ``s = num_samples`` coordinates are drawn without replacement (so ``s <= d``). Each
    ``k``-th order contraction ``D^k_v u`` is one ``k``-jet with input series
    ``(v, 0, ..., 0)``: about ``k^2/2`` forward passes, memory about ``k``, instead of
    ``2^(k-1)`` nested first-order passes. Through an :class:`AbstractSplitFunction` each
    tangent costs ``O(width)`` in the first layer, so the per-point cost is ``O(width d)``
    once (the primal) plus the head's Taylor pass, independent of ``d``:
    ``O(s width^2 depth)`` for the Laplacian, ``O(k^2 width^2 depth)`` for the biharmonic
    (two 4-jets). For the Laplacian the ``s`` second-order coefficients are summed while
    they propagate (:meth:`AbstractSplitFunction.head_taylor2`, "collapsed" Taylor mode):
    one second-order vector per point instead of ``s``.

    - Laplacian: ``(d/s) sum_{i in I} D^2_{e_i} u``, ``I`` uniform of size ``s`` without
      replacement. Unbiased; variance ``(d^2/s)(1 - (s-1)/(d-1)) sigma^2`` with
      ``sigma^2`` the population variance of ``{u_ii}``.
    - Biharmonic (needs ``s >= 2``): ``Lap^2 u = sum_i u_iiii + sum_{i != j} u_iijj``. With
      ``I`` as above, Rademacher signs ``eps`` on ``I``, ``v = sum_{i in I} eps_i e_i`` and
      ``k`` uniform in ``I``: ``E_eps[D^4_v u] = sum_{i in I} u_iiii + 3 sum_{i != j in I}
      u_iijj`` and ``E_k[s u_kkkk] = sum_{i in I} u_iiii``, so

          d u_kkkk + d(d-1) / (3 s(s-1)) * (D^4_v u - s u_kkkk)

      is unbiased (``k`` is uniform in ``range(d)``; pairs are in ``I`` with probability
      ``s(s-1)/(d(d-1))``). Two fourth-order jets whatever ``s`` is: one along ``e_k``, one
      along ``v`` (``s`` non-zero tangent entries, gathered in the first layer), so a
      larger ``s`` lowers the variance at almost no cost. The variance grows like
      ``d^4/s^2`` times the spread of the ``u_iijj`` (the sign products add noise of the
      same order); the diagonal is a ``1/d`` share of it, which is why one coordinate
      estimates it as well as ``s`` do (measured: the same standard deviation as the
      ``s + 1``-jet version with all ``s`` diagonal terms, at ``d = 1e3``, ``s = 16``).
    - Linear operator: ``s`` of the ``T_k`` terms of order ``k`` without replacement,
      weight ``T_k / s``, each term by polarisation (see :class:`LinearOperator`).
    """

    num_samples: int = eqx.field(static=True)

    def dense_vectors(self, order: int) -> int:
        return 0

    def jets(self, order: int, d: int) -> int:
        return self.num_samples if order == 2 else 2

    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        return self.value_and_laplacian(fn, x, key=key)[1]

    def value_and_laplacian(self, fn: ScalarFn, x: Array, *, key: Array):
        d, s = x.shape[0], self.num_samples
        value, second = sparse_second_order_sum(fn, x, random_subset(key, d, s))
        return value, (d / s) * second

    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        d, s = x.shape[0], self.num_samples
        if d == 1:
            return coordinate_derivative(fn, x, jnp.zeros((), jnp.int32), 4)
        if s < 2:
            raise UserError(f"the sparse STDE biharmonic needs num_samples >= 2, got {s}")
        kidx, ksign, kdiag = jax.random.split(key, 3)
        idx = random_subset(kidx, d, s)
        eps = jax.random.rademacher(ksign, (s,), dtype=x.dtype)
        k = idx[jax.random.randint(kdiag, (), 0, s)]
        # both jets under one vmap: the embedding and the primal through the head are not
        # batched (computed once) and their series share each layer's matrix product
        pad = jnp.zeros((s,), x.dtype).at[0].set(1.0)  # e_k as s entries
        diag, mixed = jax.vmap(lambda i, v: sparse_derivatives(fn, x, i, v, 4)[3])(
            jnp.stack([jnp.full((s,), k), idx]), jnp.stack([pad, eps])
        )
        return d * diag + d * (d - 1) / (3.0 * s * (s - 1)) * (mixed - s * diag)

    def linear(self, op: LinearOperator, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        return sampled_linear(op, self.num_samples, term_values, fn, x, key)


class DenseSTDE(AbstractSampledEstimator):
    """Random dense directions by univariate Taylor mode: the Taylor-mode HTE.

    ``s = num_samples`` directions ``v_n`` (any ``s >= 1``, also ``s > d``), each
    contraction ``D^k_{v_n} u`` one ``k``-jet with input series ``(v_n, 0, ..., 0)``.

    - Laplacian: ``(1/s) sum_n D^2_{v_n} u``, Rademacher ``v_n``. Unbiased for every
      ``s >= 1``, including ``s < d`` (no ``s/d`` rescaling: ``E[v v^T] = I``); variance
      ``(2/s) sum_{i != j} u_ij^2`` (no diagonal contribution, the reason for Rademacher).
    - Biharmonic: ``(1/(3s)) sum_n D^4_{v_n} u``, Gaussian ``v_n``; unbiased since
      ``E[v_i v_j v_k v_l] = d_ij d_kl + d_ik d_jl + d_il d_jk`` gives
      ``E[D^4_v u] = 3 Lap^2 u``; variance ``Var(D^4_v u) / (9 s)``.
    - General linear operators are not supported (raises ``ValueError``).

    Cost: every tangent is a dense ``d``-vector, so each jet multiplies the first layer's
    ``(width, d)`` matrix by its ``k`` series terms: ``O(s k^2 width d)`` per point for
    order ``k``, memory ``O(s k d)`` for the input series. The same estimates as
    :class:`~scifm.operators.Hutchinson` with Taylor mode in place of nested first-order
    AD; contrast :class:`STDE`, whose sparse tangents make the cost independent of ``d``.
    """

    num_samples: int = eqx.field(static=True)

    def dense_vectors(self, order: int) -> int:
        return self.num_samples * order

    def jets(self, order: int, d: int) -> int:
        return self.num_samples

    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        v = jax.random.rademacher(key, (self.num_samples, x.shape[0]), dtype=x.dtype)
        return jnp.mean(jax.vmap(lambda w: dense_derivatives(fn, x, w, 2)[1])(v))

    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        v = jax.random.normal(key, (self.num_samples, x.shape[0]), dtype=x.dtype)
        return jnp.mean(jax.vmap(lambda w: dense_derivatives(fn, x, w, 4)[3])(v)) / 3.0
