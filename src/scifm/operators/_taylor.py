"""Univariate Taylor arithmetic in the derivative convention (no ``1/k!``), up to order 4.

Models use these to propagate Taylor series explicitly (fewer operations than the generic
``jet`` rules, and the series of all directions go through each dense layer as one matrix
product). Entry ``k - 1`` of a series is ``d^k/dt^k`` of the curve at ``t = 0``.
"""

from __future__ import annotations

from math import comb

from jax import Array

MAX_ORDER = 4


def compose(g: list[Array], a: list[Array]) -> list[Array]:
    """Series of ``G(A(t))`` from ``g = [G'(A0), G''(A0), ...]`` and ``a = [A1, A2, ...]``
    (Faa di Bruno: complete Bell polynomials), for ``len(a) <= 4``; ``len(g) >= len(a)``."""
    k = len(a)
    if k > MAX_ORDER:
        raise ValueError(f"explicit Taylor propagation goes to order {MAX_ORDER}, got {k}")
    out = [g[0] * a[0]]
    if k >= 2:
        a1sq = a[0] * a[0]
        out.append(g[0] * a[1] + g[1] * a1sq)
    if k >= 3:
        out.append(g[0] * a[2] + 3 * g[1] * a[0] * a[1] + g[2] * a1sq * a[0])
    if k >= 4:
        out.append(
            g[0] * a[3]
            + g[1] * (4 * a[0] * a[2] + 3 * a[1] * a[1])
            + 6 * g[2] * a1sq * a[1]
            + g[3] * a1sq * a1sq
        )
    return out


def multiply(p0: Array, p: list[Array], q0: Array, q: list[Array]) -> list[Array]:
    """Series of ``P(t) Q(t)`` (Leibniz rule), given both primals and series."""
    ps, qs = [p0, *p], [q0, *q]
    return [sum(comb(k, j) * ps[j] * qs[k - j] for j in range(k + 1)) for k in range(1, len(p) + 1)]


def tanh_derivatives(t: Array, order: int) -> list[Array]:
    """``[tanh', ..., tanh^(order)]`` at the point whose ``tanh`` is ``t``, as polynomials in
    ``t``: ``tanh' = 1 - t^2`` and ``(tanh^(k))' = `` the derivative of that polynomial."""
    if order > MAX_ORDER:
        raise ValueError(f"explicit Taylor propagation goes to order {MAX_ORDER}, got {order}")
    t1 = 1.0 - t * t
    out = [t1]
    if order >= 2:
        out.append(-2.0 * t * t1)
    if order >= 3:
        out.append(-2.0 * t1 * t1 - 2.0 * t * out[1])
    if order >= 4:
        out.append(-6.0 * t1 * out[1] - 2.0 * t * out[2])
    return out
