"""Univariate Taylor arithmetic in the derivative convention (no ``1/k!``), up to order 4.

Models use these to propagate Taylor series explicitly in their
:meth:`AbstractSplitFunction.head_series` (fewer operations than the generic ``jet`` rules,
and the series of all directions go through each dense layer as one matrix product). Entry
``k - 1`` of a series is ``d^k/dt^k`` of the curve at ``t = 0``. Public as
``scifm.operators.taylor_compose``, ``taylor_multiply``, ``tanh_derivatives`` and
``MAX_TAYLOR_ORDER``.
"""

from __future__ import annotations

from math import comb

from jax import Array

from scifm._checks import UserError

MAX_TAYLOR_ORDER = 4
"""The highest order that :func:`taylor_compose` and :func:`tanh_derivatives` handle; models
fall back to ``jet`` (:meth:`AbstractSplitFunction.head_series`) above it."""


def taylor_compose(g: list[Array], a: list[Array]) -> list[Array]:
    """Taylor series of ``G(A(t))``: ``[d^k/dt^k G(A(t)) at t = 0]_{k=1..K}``.

    ``g = [G'(A0), G''(A0), ...]`` are the derivatives of ``G`` at ``A0 = A(0)`` (at least
    ``K`` of them) and ``a = [A1, ..., AK]`` the series of ``A``, ``K = len(a) <=``
    :data:`MAX_TAYLOR_ORDER`; elementwise (arrays broadcast). Faa di Bruno's formula
    (complete Bell polynomials). Raises ``ValueError`` for ``K > MAX_TAYLOR_ORDER``.
    """
    k = len(a)
    if k > MAX_TAYLOR_ORDER:
        raise UserError(f"explicit Taylor propagation goes to order {MAX_TAYLOR_ORDER}, got {k}")
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


def taylor_multiply(p0: Array, p: list[Array], q0: Array, q: list[Array]) -> list[Array]:
    """Taylor series of ``P(t) Q(t)`` by the Leibniz rule, from the primals ``p0``, ``q0`` and
    the series ``p``, ``q`` (equal lengths ``K``, any order); elementwise, returns ``K``
    coefficients."""
    ps, qs = [p0, *p], [q0, *q]
    return [sum(comb(k, j) * ps[j] * qs[k - j] for j in range(k + 1)) for k in range(1, len(p) + 1)]


def tanh_derivatives(t: Array, order: int) -> list[Array]:
    """``[tanh', ..., tanh^(order)]`` at the point whose ``tanh`` is ``t``, as polynomials in
    ``t``: ``tanh' = 1 - t^2`` and ``(tanh^(k))' = `` the derivative of that polynomial.
    Raises ``ValueError`` for ``order > MAX_TAYLOR_ORDER``."""
    if order > MAX_TAYLOR_ORDER:
        raise UserError(
            f"explicit Taylor propagation goes to order {MAX_TAYLOR_ORDER}, got {order}"
        )
    t1 = 1.0 - t * t
    out = [t1]
    if order >= 2:
        out.append(-2.0 * t * t1)
    if order >= 3:
        out.append(-2.0 * t1 * t1 - 2.0 * t * out[1])
    if order >= 4:
        out.append(-6.0 * t1 * out[1] - 2.0 * t * out[2])
    return out
