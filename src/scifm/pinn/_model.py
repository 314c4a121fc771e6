"""The hard-constrained PINN ansatz ``u(x) = p(|x|^2) N(x)``."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from ..operators import MAX_TAYLOR_ORDER, AbstractSplitFunction, taylor_compose, taylor_multiply
from ._solutions import radial_polynomial


class HardConstraint(AbstractSplitFunction):
    """``u(x) = p(|x|^2) * net(x)``: exactly zero where ``p`` vanishes (the boundary).

    ``radial`` holds the coefficients of ``p`` in ``rho = |x|^2`` (ascending), e.g.
    ``(1, -1)`` for the unit ball. The split keeps sparse tangents cheap: the embedding is
    ``(net.embed(x), |x|^2)``, and along ``v = sum_m val_m e_{idx_m}`` the series of
    ``|x + t v|^2`` is ``(2 x.v, 2 |v|^2, 0, ...)``, ``O(m^2)`` work.
    """

    net: AbstractSplitFunction
    radial: tuple[float, ...] = eqx.field(static=True)

    def embed(self, x: Array) -> tuple[Array, ...]:
        return (*self.net.embed(x), jnp.dot(x, x))

    def embed_radial(self, x: Array):
        (net0, net1), rho = self.net.embed_radial(x), jnp.dot(x, x)
        return (*net0, rho), (*net1, 2 * rho)  # |(1 + t) x|^2 = (1 + t)^2 |x|^2

    def embed_series(self, x: Array, idx: Array, val: Array, order: int):
        net = self.net.embed_series(x, idx, val, order)
        val = val.astype(x.dtype)
        xv = jnp.dot(x[idx], val)
        vv = jnp.sum(jnp.outer(val, val) * (idx[:, None] == idx[None, :]))
        rho = [2 * xv, 2 * vv] + [jnp.zeros_like(xv)] * max(order - 2, 0)
        return [(*net[k], rho[k]) for k in range(order)]

    def head(self, *z: Array) -> Array:
        *h, rho = z
        return self._poly(rho, 0) * self.net.head(*h)

    def head_series(self, z0, series):
        """``p(rho) N`` by the product rule, ``p(rho(t))`` by Faa di Bruno, ``N`` by the
        network's own :meth:`head_series` (orders <= 4; ``jet`` above)."""
        if len(series) > MAX_TAYLOR_ORDER:
            return super().head_series(z0, series)
        *h0, r0 = z0
        n0, n = self.net.head_series(tuple(h0), [tuple(s[:-1]) for s in series])
        k = len(series)
        p = taylor_compose([self._poly(r0, j) for j in range(1, k + 1)], [s[-1] for s in series])
        p0 = self._poly(r0, 0)
        return p0 * n0, taylor_multiply(p0, p, n0, n)

    def head_taylor2(self, z0, z1, z2):
        """Product rule on ``p(rho) N``: with ``D p = p' rho_1``,
        ``D^2 p = p'' rho_1^2 + p' rho_2``, ``D^2 (p N) = D^2 p N + 2 D p D N + p D^2 N``."""
        *h0, r0 = z0
        *h1, r1 = z1
        *h2, r2 = z2
        n0, n1, n2 = self.net.head_taylor2(tuple(h0), tuple(h1), tuple(h2))
        p, dp, ddp = self._poly(r0, 0), self._poly(r0, 1), self._poly(r0, 2)
        f1 = dp * r1 * n0 + p * n1
        f2 = n0 * (ddp * jnp.sum(r1 * r1) + dp * r2) + 2 * dp * jnp.sum(r1 * n1) + p * n2
        return p * n0, f1, f2

    def _poly(self, rho, k):
        return radial_polynomial(self.radial, rho, k)
