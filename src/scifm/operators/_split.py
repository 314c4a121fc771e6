"""Functions written as ``head(embed(x))`` so that coordinate tangents stay cheap, and the
derivatives along sparse (coordinate) directions that use that structure when it is there."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ._jet import collapsed_second_order, dense_derivatives, jet_head_series


class AbstractSplitFunction(eqx.Module):
    """A scalar function ``u(x) = head(*embed(x))`` whose embedding has a cheap Taylor series.

    High-dimensional PINNs spend almost all of their time in the first dense layer
    ``h = W x + b`` with ``W`` of shape ``(width, d)``. Along a *sparse* direction
    ``v = sum_m val_m e_{idx_m}`` the curve ``x + t v`` maps to ``h(x) + t W[:, idx] @ val``:
    the tangent is a gather of a few columns, ``O(width * m)`` instead of ``O(width * d)``.
    Estimators that use coordinate (sparse) tangents detect this interface and push the
    jet through :meth:`head` only, which works in ``width`` dimensions whatever ``d`` is.

    Subclasses implement three methods; ``__call__`` is provided. :meth:`embed_series` must
    return the exact Taylor coefficients (derivative convention: the ``k``-th entry is
    ``d^k/dt^k embed(x + t v)`` at ``t = 0``) of the embedding along ``v``. Embeddings that
    are polynomials of low degree in ``x`` (affine maps, ``|x|^2``) have a finite series, so
    this is exact, not an approximation.
    """

    @abc.abstractmethod
    def embed(self, x: Array) -> tuple[Array, ...]:
        """The embedding ``z = embed(x)``: a tuple of arrays whose size does not grow with d."""

    @abc.abstractmethod
    def embed_series(self, x: Array, idx: Array, val: Array, order: int) -> list[tuple[Array, ...]]:
        """Taylor coefficients 1..order of ``embed(x + t v)``, ``v = sum_m val_m e_{idx_m}``.

        Returns a list of length ``order``; entry ``k - 1`` has the structure of
        ``embed(x)`` and holds ``d^k/dt^k embed(x + t v)`` at ``t = 0``. Repeated indices in
        ``idx`` add up.
        """

    @abc.abstractmethod
    def head(self, *z: Array) -> Array:
        """The rest of the function, a scalar, from the embedding."""

    def embed_radial(self, x: Array) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        """``(embed(x), d/dt embed((1 + t) x) at t = 0)``: the embedding and its tangent along
        ``x`` itself (what a radial derivative needs). The default is a JVP, ``O(width d)``;
        an affine first layer gets it for free (``W x = embed(x) - b``)."""
        return jax.jvp(self.embed, (x,), (x,))

    def head_series(
        self, z0: tuple[Array, ...], series: list[tuple[Array, ...]]
    ) -> tuple[Array, list[Array]]:
        """``(head(z0), [d^k/dt^k head(z(t))]_{k=1..K})`` at ``t = 0`` for the curve whose
        Taylor coefficients are ``series`` (``K = len(series)``, each entry structured like
        ``z0``). The default is ``jet``; models override it with an explicit propagation
        (same numbers, fewer operations; see :func:`~scifm.operators.taylor_compose`)."""
        return jet_head_series(self.head, z0, series)

    def head_taylor2(
        self, z0: tuple[Array, ...], z1: tuple[Array, ...], z2: tuple[Array, ...]
    ) -> tuple[Array, Array, Array]:
        """Collapsed second-order Taylor mode through :meth:`head`, for sums of ``D^2``.

        For ``s`` curves ``z(t) = z0 + t z1_j + t^2/2 z2_j`` (``z1`` stacked along a leading
        axis of size ``s``, ``z2 = sum_j z2_j`` already summed), returns
        ``(head(z0), [d/dt head(z_j(t))]_j, sum_j d^2/dt^2 head(z_j(t)))`` at ``t = 0``.
        The sum is linear in the second-order inputs, so only their sum is propagated
        ("collapsed" Taylor mode, Dangel et al. 2024): one width-sized second-order vector
        per point instead of ``s``. The default uses ``jet`` per direction plus a JVP;
        models override it with an explicit propagation (same numbers, fewer operations).
        """
        return collapsed_second_order(self.head, z0, z1, z2)

    def __call__(self, x: Array) -> Array:
        return self.head(*self.embed(x))


def radial_derivative(fn: Callable[[Array], Array], x: Array) -> Array:
    """``x . grad fn(x) / |x|``, the derivative of ``fn: R^d -> R`` at one point ``x`` (shape
    ``(d,)``, ``x != 0``) along the outward normal of the sphere through ``x``.

    One JVP. Through an :class:`AbstractSplitFunction` the tangent comes from
    :meth:`~AbstractSplitFunction.embed_radial` (no second ``(width, d)`` product); any other
    ``fn`` gets a JVP along ``x / |x|``. Returns a scalar.
    """
    norm = jnp.linalg.norm(x)
    if isinstance(fn, AbstractSplitFunction):
        z0, z1 = fn.embed_radial(x)
        return jax.jvp(fn.head, tuple(z0), tuple(z1))[1] / norm
    return jax.jvp(fn, (x,), (x / norm,))[1]


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
