"""The one place that imports :mod:`jax.experimental.jet` (Taylor-mode AD).

A leaf module: plain functions of callables, nothing from the rest of :mod:`scifm`. The
directional derivative along a dense direction ``v`` (a full ``d``-vector) and the default
Taylor passes through :meth:`AbstractSplitFunction.head` live here; the sparse dispatchers
that recognise an :class:`AbstractSplitFunction` live beside it, in ``_split.py``.

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


def dense_derivatives(fn: Callable[[Array], Array], x: Array, v: Array, order: int) -> Array:
    """``[D_v fn(x), D_v^2 fn(x), ..., D_v^order fn(x)]`` in one Taylor-mode pass.

    Cost: about ``order^2 / 2`` times a forward pass of ``fn`` (each nonlinearity
    convolves the series), memory about ``order`` forward passes.
    """
    zeros = jnp.zeros_like(x)
    series = [v] + [zeros] * (order - 1)
    _, out = jet(fn, (x,), (series,))
    return jnp.stack([jnp.asarray(o) for o in out])


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
