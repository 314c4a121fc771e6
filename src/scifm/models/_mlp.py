"""The PINN network: a tanh MLP ``R^d -> R`` that exposes its first layer to estimators."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from scifm._checks import UserError

from ..operators import MAX_TAYLOR_ORDER, AbstractSplitFunction, tanh_derivatives, taylor_compose


class MLP(AbstractSplitFunction):
    """``u(x) = w_L . tanh(... tanh(W_1 x + b_1) ...) + b_L``, scalar output.

    ``depth`` counts the hidden layers (``depth = 4``: four ``tanh`` layers of ``width``
    units, then a linear read-out). Initialisation: Glorot-normal weights, zero biases.

    As an :class:`~scifm.operators.AbstractSplitFunction`, ``embed(x) = W_1 x + b_1`` and
    the Taylor series along ``v = sum_m val_m e_{idx_m}`` is ``(W_1[:, idx] @ val, 0, ...)``:
    sparse estimators gather columns of ``W_1`` instead of multiplying a ``(width, d)``
    matrix, which is what makes ``d = 10^6`` affordable.

    Args:
        in_size: input dimension ``d``.
        width: hidden width (default 128).
        depth: number of hidden ``tanh`` layers (default 4).
        key: PRNG key for the initial weights.
        dtype: parameter dtype (default: JAX's default float).
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    in_size: int = eqx.field(static=True)

    def __init__(self, in_size: int, width: int = 128, depth: int = 4, *, key: Array, dtype=None):
        if in_size < 1 or width < 1 or depth < 1:
            raise UserError(
                f"in_size, width and depth must be >= 1, got {in_size}, {width}, {depth}"
            )
        dtype = dtype or jnp.zeros(()).dtype
        sizes = [in_size] + [width] * depth + [1]
        keys = jax.random.split(key, len(sizes) - 1)
        init = jax.nn.initializers.glorot_normal(in_axis=1, out_axis=0)
        self.weights = tuple(
            init(k, (n_out, n_in), dtype)
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
        )
        self.biases = tuple(jnp.zeros((n,), dtype) for n in sizes[1:])
        self.in_size = in_size

    def embed(self, x: Array) -> tuple[Array]:
        return (self.weights[0] @ x + self.biases[0],)

    def embed_radial(self, x: Array):
        h = self.weights[0] @ x + self.biases[0]
        return (h,), (h - self.biases[0],)

    def embed_series(self, x: Array, idx: Array, val: Array, order: int) -> list[tuple[Array]]:
        first = self.weights[0][:, idx] @ val.astype(self.weights[0].dtype)
        zero = jnp.zeros_like(first)
        return [(first,)] + [(zero,)] * (order - 1)

    def head(self, h: Array) -> Array:
        h = jnp.tanh(h)
        for w, b in zip(self.weights[1:-1], self.biases[1:-1], strict=True):
            h = jnp.tanh(w @ h + b)
        return (self.weights[-1] @ h + self.biases[-1])[0]

    def head_series(self, z0, series):
        """Explicit Taylor propagation (orders <= 4; ``jet`` above): per layer the series of
        ``tanh`` by Faa di Bruno with ``tanh^(k)`` as polynomials in ``tanh``, then all
        ``K`` coefficient vectors through the weight matrix as one ``(K, width)`` product."""
        if len(series) > MAX_TAYLOR_ORDER:
            return super().head_series(z0, series)
        (a0,), a = z0, jnp.stack([s[0] for s in series])
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = jnp.tanh(a0)
            f = taylor_compose(tanh_derivatives(h, len(a)), list(a))
            a0, a = w @ h + b, jnp.stack(f) @ w.T
        return a0[0], list(a[:, 0])

    def head_taylor2(self, z0, z1, z2):
        """Explicit collapsed second-order propagation (see the base class): per layer
        ``h = tanh(a)``, ``h_1j = t' a_1j``, ``h_2 = t'' sum_j a_1j^2 + t' a_2`` with
        ``t' = 1 - h^2``, ``t'' = -2 h t'``; the ``s`` first-order vectors are matrix rows,
        the second-order sum is one vector."""
        (a0,), (a1,), (a2,) = z0, z1, z2
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = jnp.tanh(a0)
            t1 = 1.0 - h * h
            t2 = -2.0 * h * t1
            h1 = a1 * t1
            h2 = t2 * jnp.sum(a1 * a1, axis=0) + t1 * a2
            a0, a1, a2 = w @ h + b, h1 @ w.T, w @ h2
        return a0[0], a1[:, 0], a2[0]
