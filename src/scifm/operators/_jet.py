"""The one place that imports :mod:`jax.experimental.jet` (Taylor-mode AD).

Two directional-derivative helpers are built on it: along a dense direction ``v`` (a full
``d``-vector) and along a sparse one ``v = sum_m val_m e_{idx_m}``. The sparse one pushes
the jet through :meth:`AbstractSplitFunction.head` when the function has that structure,
so its cost does not depend on ``d`` beyond the primal embedding.

Convention: ``jet`` works with derivative coefficients, i.e. the input curve is
``x + t v`` with series ``(v, 0, ..., 0)`` and output entry ``k - 1`` is
``d^k/dt^k fn(x + t v)`` at ``t = 0``, the ``k``-th directional derivative ``D_v^k fn(x)``
(no ``1/k!``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.experimental.jet import jet

from ._split import AbstractSplitFunction


def dense_derivatives(fn: Callable[[Array], Array], x: Array, v: Array, order: int) -> Array:
    """``[D_v fn(x), D_v^2 fn(x), ..., D_v^order fn(x)]`` in one Taylor-mode pass.

    Cost: about ``order^2 / 2`` times a forward pass of ``fn`` (each nonlinearity
    convolves the series), memory about ``order`` forward passes.
    """
    zeros = jnp.zeros_like(x)
    series = [v] + [zeros] * (order - 1)
    _, out = jet(fn, (x,), (series,))
    return jnp.stack([jnp.asarray(o) for o in out])


def sparse_derivatives(
    fn: Callable[[Array], Array], x: Array, idx: Array, val: Array, order: int
) -> Array:
    """:func:`dense_derivatives` along ``v = sum_m val_m e_{idx_m}``, never forming ``W @ v``.

    If ``fn`` is an :class:`AbstractSplitFunction`, the embedding and its (finite) Taylor
    series are computed directly and the jet runs through ``head`` only: for an MLP the
    first-layer tangent is ``W[:, idx] @ val`` (``O(width m)``), not ``W @ v``
    (``O(width d)``). Otherwise ``v`` is densified and :func:`dense_derivatives` is used;
    both paths give the same numbers.
    """
    if isinstance(fn, AbstractSplitFunction):
        _, out = fn.head_series(fn.embed(x), fn.embed_series(x, idx, val, order))
        return jnp.stack([jnp.asarray(o) for o in out])
    v = jnp.zeros_like(x).at[idx].add(val.astype(x.dtype))
    return dense_derivatives(fn, x, v, order)


def jet_head_series(head, z0: tuple, series: list[tuple]):
    """Default :meth:`AbstractSplitFunction.head_series`: one ``jet`` through ``head``."""
    per_input = tuple([series[k][p] for k in range(len(series))] for p in range(len(z0)))
    return jet(head, tuple(z0), per_input)


def collapsed_second_order(head, z0: tuple, z1: tuple, z2: tuple):
    """Default :meth:`AbstractSplitFunction.head_taylor2`: ``s`` jets plus one JVP.

    ``sum_j D^2 head`` along curves ``z0 + t z1_j + t^2/2 z2_j`` equals the jets with zero
    second-order input, summed, plus ``head'(z0) . sum_j z2_j`` (the output's second
    coefficient is affine in the input's).
    """

    def one(*z1j):
        _, (f1, f2) = jet(head, tuple(z0), tuple([a, jnp.zeros_like(a)] for a in z1j))
        return f1, f2

    f1, f2 = jax.vmap(one)(*z1)
    f0, f2_linear = jax.jvp(head, tuple(z0), tuple(z2))
    return f0, f1, jnp.sum(f2) + f2_linear


def sparse_second_order_sum(fn, x: Array, idx: Array) -> tuple[Array, Array]:
    """``(fn(x), sum_j D^2_{e_{idx_j}} fn(x))`` (coordinate directions), collapsed when ``fn``
    is an :class:`AbstractSplitFunction` (see :meth:`~AbstractSplitFunction.head_taylor2`)."""
    if isinstance(fn, AbstractSplitFunction):
        one = jnp.ones((1,), dtype=x.dtype)
        series = jax.vmap(lambda i: fn.embed_series(x, i[None], one, 2))(idx)
        z1 = series[0]
        z2 = tuple(jnp.sum(a, axis=0) for a in series[1])
        f0, _, f2 = fn.head_taylor2(fn.embed(x), z1, z2)
        return f0, f2
    one = jnp.ones((1,), dtype=x.dtype)
    second = jax.vmap(lambda i: sparse_derivatives(fn, x, i[None], one, 2)[1])(idx)
    return fn(x), jnp.sum(second)
