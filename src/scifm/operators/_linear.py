"""General linear differential operators ``L u = sum_t c_t d^{alpha_t} u`` (constant coefficients)."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import numpy as np
from jax import Array

from scifm._checks import UserError


class LinearOperator(eqx.Module):
    """``L u(x) = sum_t coef_t * d^k u / (dx_{i_1} ... dx_{i_k})`` with constant coefficients.

    Each term is ``(coef, (i_1, ..., i_k))``: a coefficient and the (0-based) coordinates
    that are differentiated, order ``k = len(indices) >= 1`` (any order; order <= 4 is what
    is tested). Example, ``u_xxy - 2 u_yyyy`` in 2-D::

        op = LinearOperator([(1.0, (0, 0, 1)), (-2.0, (1, 1, 1, 1))])
        op(fn, x, estimator=STDE(num_samples=1), key=key)

    Mixed partials come from univariate Taylor mode by polarisation: for directions
    ``v_1..v_k``,

        d_{v_1} ... d_{v_k} u = 1 / (2^(k-1) k!) * sum_{eps in {+-1}^k, eps_1 = +1}
                                 (prod eps) * D^k_{sum_p eps_p v_p} u,

    (the ``eps_1 = -1`` half equals the ``+1`` half since ``D^k_{-w} = (-1)^k D^k_w``), with
    coordinate directions ``v_p = e_{i_p}``; equal combined directions (also ``w`` and ``-w``)
    are merged, so e.g.
    ``u_iijj`` needs 4 jets (``12 u_iijj = D^4_{e_i+e_j} + D^4_{e_i-e_j} - 2 D^4_{e_i}
    - 2 D^4_{e_j}``) and ``u_iiii`` one. Each jet's tangent has at most ``k`` non-zeros, so it
    is cheap through :class:`AbstractSplitFunction` models.

    Estimators (``Exact``, ``SDGD``, ``STDE``) evaluate all terms or an unbiased
    random subset of them; see their docstrings.
    """

    terms: tuple[tuple[float, tuple[int, ...]], ...] = eqx.field(static=True)

    def __init__(self, terms: Sequence[tuple[float, Sequence[int]]]):
        clean = []
        for term in terms:
            coef, indices = term
            indices = tuple(int(i) for i in indices)
            if len(indices) == 0 or min(indices) < 0:
                raise UserError(
                    f"each term needs at least one non-negative coordinate index, got {term!r}"
                )
            clean.append((float(coef), indices))
        if not clean:
            raise UserError("a LinearOperator needs at least one term")
        self.terms = tuple(clean)

    @property
    def max_index(self) -> int:
        return max(max(ix) for _, ix in self.terms)

    def groups(self) -> dict[int, tuple[tuple[float, tuple[int, ...]], ...]]:
        """Terms grouped by order ``k`` (a jet of order ``k`` per group)."""
        out: dict[int, list] = {}
        for coef, ix in self.terms:
            out.setdefault(len(ix), []).append((coef, ix))
        return {k: tuple(v) for k, v in sorted(out.items())}

    def __call__(self, fn: Callable[[Array], Array], x: Array, *, estimator, key: Array) -> Array:
        """Estimate ``L fn(x)`` with ``estimator`` (one point ``x`` of shape ``(d,)``)."""
        if self.max_index >= x.shape[-1]:
            raise UserError(
                f"operator differentiates coordinate {self.max_index} but x has d={x.shape[-1]}"
            )
        return estimator.linear(self, fn, x, key=key)


@functools.cache
def polarisation(
    indices: tuple[int, ...],
) -> tuple[tuple[tuple[int, ...], tuple[int, ...], float], ...]:
    """Jets whose weighted sum is the mixed partial ``d_{i_1} ... d_{i_k} u``.

    Returns ``(idx, val, weight)`` triples: ``sum weight * D^k_v u`` with
    ``v = sum_m val_m e_{idx_m}`` equals the mixed partial. ``idx`` lists the distinct
    indices (padded to length ``k``; padding has ``val = 0``).
    """
    k = len(indices)
    distinct = sorted(set(indices))
    pos = {a: m for m, a in enumerate(distinct)}
    merged: dict[tuple[int, ...], float] = {}
    norm = 2 ** (k - 1) * math.factorial(k)
    for rest in itertools.product((1, -1), repeat=k - 1):
        eps = (1, *rest)
        coeffs = [0] * len(distinct)
        for e, i in zip(eps, indices, strict=True):
            coeffs[pos[i]] += e
        if all(c == 0 for c in coeffs):
            continue
        sign = float(np.prod(eps))
        if next(c for c in coeffs if c != 0) < 0:  # D^k_{-w} = (-1)^k D^k_w: one jet for both
            coeffs, sign = [-c for c in coeffs], sign * (-1) ** k
        merged[tuple(coeffs)] = merged.get(tuple(coeffs), 0.0) + sign / norm
    pad = k - len(distinct)
    idx = tuple(distinct) + (distinct[0],) * pad
    return tuple(
        (idx, tuple(coeffs) + (0,) * pad, w) for coeffs, w in merged.items() if abs(w) > 1e-15
    )


@functools.cache
def jet_tables(
    group: tuple[tuple[float, tuple[int, ...]], ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Padded arrays for one order group: ``idx, val (T, J, k)``, ``weight (T, J)``, ``coef (T,)``."""
    k = len(group[0][1])
    jets = [polarisation(ix) for _, ix in group]
    n_jets = max(len(j) for j in jets)
    t = len(group)
    idx = np.zeros((t, n_jets, k), dtype=np.int32)
    val = np.zeros((t, n_jets, k))
    weight = np.zeros((t, n_jets))
    for a, js in enumerate(jets):
        for b, (ji, jv, w) in enumerate(js):
            idx[a, b], val[a, b], weight[a, b] = ji, jv, w
        idx[a, len(js) :] = js[0][0]
    coef = np.array([c for c, _ in group])
    return idx, val, weight, coef
