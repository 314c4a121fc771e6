"""The estimator interface and the public operator functions."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from scifm._checks import UserError

from ._linear import LinearOperator, jet_tables
from ._sampling import random_subset
from ._split import sparse_derivatives

ScalarFn = Callable[[Array], Array]


class AbstractEstimator(eqx.Module):
    """An unbiased estimator of differential operators of a scalar function ``fn: R^d -> R``.

    One point in (``x`` of shape ``(d,)``), a scalar out; batch with ``jax.vmap`` outside,
    giving each point its own key (or the same key to share the random directions).
    Randomness comes only from ``key``; deterministic estimators ignore it.

    Concrete estimators implement :meth:`laplacian` and :meth:`biharmonic`; :meth:`linear`
    (a general :class:`LinearOperator`) is optional and raises ``ValueError`` where an
    estimator has no meaning for it. :meth:`check_dimension`, :meth:`dense_vectors` and
    :meth:`jets` state what an estimator can run and what it costs, so that callers (the
    benchmarks) ask the estimator instead of knowing about each one.
    """

    @abc.abstractmethod
    def laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        """Estimate ``sum_i d^2 fn / dx_i^2`` at ``x``."""

    @abc.abstractmethod
    def biharmonic(self, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        """Estimate ``sum_{i,j} d^4 fn / dx_i^2 dx_j^2`` at ``x``."""

    def value_and_laplacian(self, fn: ScalarFn, x: Array, *, key: Array) -> tuple[Array, Array]:
        """``(fn(x), laplacian estimate)``; estimators that get ``fn(x)`` for free from their
        Taylor pass override this (PINN residuals need both)."""
        return fn(x), self.laplacian(fn, x, key=key)

    def linear(self, op: LinearOperator, fn: ScalarFn, x: Array, *, key: Array) -> Array:
        """Estimate ``op`` applied to ``fn`` at ``x``."""
        raise UserError(
            f"{type(self).__name__} estimates only the Laplacian and the biharmonic; for a "
            "general LinearOperator use Exact(), SDGD(...) or STDE(...)"
        )

    def check_dimension(self, d: int) -> None:
        """Raise ``ValueError`` if the estimator cannot run on points of dimension ``d``
        (those that sample coordinates without replacement need ``num_samples <= d``).
        The default accepts every ``d``."""

    def dense_vectors(self, order: int) -> int | None:
        """Dense ``d``-vectors carried per point by :meth:`laplacian` (``order=2``) or
        :meth:`biharmonic` (``order=4``): directions times the tangents each carries
        (nesting depth for first-order AD, series length for Taylor mode). Memory and the
        first-layer work grow like ``d`` times this; sparse (coordinate) tangents count 0, as
        they cost ``O(width)`` through an :class:`AbstractSplitFunction`.
        ``None`` (the default): the estimator does not say."""
        return None

    def jets(self, order: int, d: int) -> int | None:
        """Taylor-mode passes (jets, each about ``order^2 / 2`` forward passes) per point
        by :meth:`laplacian` (``order=2``) or :meth:`biharmonic` (``order=4``) at dimension
        ``d``; 0 for first-order AD. ``None`` (the default): the estimator does not say."""
        return None


class AbstractSampledEstimator(AbstractEstimator):
    """An estimator that averages over ``num_samples`` random draws (directions or
    coordinates) per point; ``num_samples >= 1`` is checked when it is made."""

    num_samples: eqx.AbstractVar[int]

    def __check_init__(self):
        if self.num_samples < 1:
            raise UserError(f"num_samples must be >= 1, got {self.num_samples}")


class AbstractCoordinateEstimator(AbstractSampledEstimator):
    """An estimator that samples ``num_samples`` of the ``d`` coordinates without
    replacement, so it needs ``num_samples <= d``."""

    def check_dimension(self, d: int) -> None:
        if self.num_samples > d:
            raise UserError(
                f"num_samples {self.num_samples} > d {d}: coordinates are sampled without "
                "replacement"
            )


def _check_point(x: Array) -> None:
    if x.ndim != 1:
        raise UserError(
            f"x must be one point of shape (d,), got shape {x.shape}; use jax.vmap for batches"
        )


def laplacian(fn: ScalarFn, x: Array, *, estimator: AbstractEstimator, key: Array) -> Array:
    """The Laplacian ``sum_i u_ii`` of ``fn`` at one point ``x`` (shape ``(d,)``), estimated
    by ``estimator`` (``Exact()``, ``SDGD(n)``, ``Hutchinson(n)``, ``STDE(n)``,
    ``DenseSTDE(n)``).

    Returns a scalar whose expectation over ``key`` is the exact Laplacian.
    """
    _check_point(x)
    return estimator.laplacian(fn, x, key=key)


def value_and_laplacian(
    fn: ScalarFn, x: Array, *, estimator: AbstractEstimator, key: Array
) -> tuple[Array, Array]:
    """``(fn(x), Laplacian estimate)`` in one pass where the estimator allows (``STDE``
    through an :class:`AbstractSplitFunction`: the primal of the Taylor pass is ``fn(x)``)."""
    _check_point(x)
    return estimator.value_and_laplacian(fn, x, key=key)


def biharmonic(fn: ScalarFn, x: Array, *, estimator: AbstractEstimator, key: Array) -> Array:
    """The biharmonic ``Lap^2 u = sum_{i,j} u_iijj`` of ``fn`` at one point ``x``, estimated
    by ``estimator``; its expectation over ``key`` is exact."""
    _check_point(x)
    return estimator.biharmonic(fn, x, key=key)


def coordinate_derivative(fn: ScalarFn, x: Array, i: Array, order: int) -> Array:
    """``d^order fn / dx_i^order`` at ``x`` by one Taylor-mode pass along ``e_i``."""
    one = jnp.ones((1,), dtype=x.dtype)
    return sparse_derivatives(fn, x, jnp.reshape(i, (1,)), one, order)[order - 1]


def term_values(
    group: tuple[tuple[float, tuple[int, ...]], ...],
    rows: Array | None,
    fn: ScalarFn,
    x: Array,
) -> Array:
    """``coef_t * d^{alpha_t} fn(x)`` for the terms ``rows`` of one order group (all if None),
    each by its polarisation jets (see :class:`LinearOperator`)."""
    idx, val, weight, coef = (jnp.asarray(a) for a in jet_tables(group))
    k = idx.shape[-1]
    if rows is not None:
        idx, val, weight, coef = idx[rows], val[rows], weight[rows], coef[rows]
    val = val.astype(x.dtype)

    def one_jet(i, v):
        return sparse_derivatives(fn, x, i, v, k)[k - 1]

    derivs = jax.vmap(jax.vmap(one_jet))(idx, val)  # (T, J)
    return coef.astype(x.dtype) * jnp.sum(weight.astype(x.dtype) * derivs, axis=-1)


def sampled_linear(
    op: LinearOperator,
    num_samples: int,
    term_fn: Callable,
    fn: ScalarFn,
    x: Array,
    key: Array,
) -> Array:
    """Unbiased term sampling: per order group of ``T_k`` terms, ``s_k = min(num_samples, T_k)``
    terms drawn without replacement and weighted ``T_k / s_k``."""
    total = jnp.zeros((), dtype=x.dtype)
    groups = op.groups()
    keys = jax.random.split(key, len(groups))
    for gkey, (_, group) in zip(keys, groups.items(), strict=True):
        t = len(group)
        s = min(num_samples, t)
        rows = None if s == t else random_subset(gkey, t, s)
        total = total + (t / s) * jnp.sum(term_fn(group, rows, fn, x))
    return total
