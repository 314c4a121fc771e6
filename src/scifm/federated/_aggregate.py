"""Server aggregation rules: how the clients' updates of one round become one update.

Every rule reads the round's updates as a matrix ``(K, P)``, one row per client (every weight
of the model flattened; a complex weight as its real and imaginary parts, so a median or a
distance treats both), and returns one row. The definitions are the textbook ones, not the
MarsFL benchmark's (whose "Krum" is effectively a medoid and whose trimmed mean keeps the half
of the values nearest the median):

- :class:`Mean`: ``sum_k w_k x_k / sum_k w_k``, ``w_k`` the client's examples (FedAvg) or 1.
- :class:`Median`: the coordinate-wise median (the mean of the two middle values for even K).
  Breaks down at ``K / 2`` bad clients: tolerates ``ceil(K / 2) - 1``.
- :class:`TrimmedMean`: per coordinate, drop the ``b = floor(beta K)`` largest and ``b``
  smallest values and average the rest (Yin et al. 2018); tolerates ``b``.
- :class:`Krum`: with ``f`` declared bad clients, score each update by the sum of squared
  distances to its ``K - f - 2`` nearest others and keep the best-scored one (Blanchard et al.
  2017); Multi-Krum (``select = m``) averages the ``m`` best-scored. Needs ``K >= 2 f + 3``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from scifm._checks import UserError


def flatten_clients(stacked) -> tuple[Float[Array, "k p"], callable]:
    """The clients' PyTrees (leaves with a leading client axis) as a real matrix ``(K, P)``, and
    the function that maps one row ``(P,)`` back to a single PyTree of the same structure."""
    leaves, treedef = jax.tree.flatten(stacked)
    k = leaves[0].shape[0]
    parts, layout = [], []
    for leaf in leaves:
        rows = leaf.reshape(k, -1)
        if jnp.iscomplexobj(leaf):
            rows = jnp.concatenate([rows.real, rows.imag], axis=1)
        parts.append(rows)
        layout.append((leaf.shape[1:], leaf.dtype, rows.shape[1]))

    def unflatten(row: Float[Array, " p"]):
        out, start = [], 0
        for shape, dtype, size in layout:
            piece = row[start : start + size]
            start += size
            if jnp.issubdtype(dtype, jnp.complexfloating):
                half = size // 2
                piece = piece[:half] + 1j * piece[half:]
            out.append(piece.reshape(shape).astype(dtype))
        return jax.tree.unflatten(treedef, out)

    return jnp.concatenate(parts, axis=1), unflatten


class AbstractAggregator(eqx.Module):
    """A rule ``(updates (K, P), weights (K,)) -> update (P,)``; see the module docstring."""

    name: ClassVar[str]

    def __call__(self, updates: Float[Array, "k p"], weights: Float[Array, " k"]):
        raise NotImplementedError

    def tolerates(self, clients: int) -> int:
        """How many arbitrary (Byzantine) clients out of ``clients`` the rule withstands."""
        return 0

    def check(self, clients: int, bad: int) -> None:
        """Refuse a federation the rule cannot serve, or more bad clients than it withstands.

        The mean withstands none, but is never refused: it is the baseline an attack breaks.
        """


class Mean(AbstractAggregator):
    """The weighted mean (FedAvg): weights by examples (``weighted``) or equal."""

    weighted: bool = True
    name: ClassVar[str] = "mean"

    def __call__(self, updates, weights):
        w = weights if self.weighted else jnp.ones_like(weights)
        return jnp.tensordot(w / jnp.sum(w), updates, axes=1)


class Median(AbstractAggregator):
    """The coordinate-wise median."""

    name: ClassVar[str] = "median"

    def __call__(self, updates, weights):
        return jnp.median(updates, axis=0)

    def tolerates(self, clients: int) -> int:
        return math.ceil(clients / 2) - 1

    def check(self, clients: int, bad: int) -> None:
        _check_tolerance(self, clients, bad, "fewer than half the clients")


class TrimmedMean(AbstractAggregator):
    """The coordinate-wise ``beta``-trimmed mean: ``floor(beta K)`` values cut at each end."""

    beta: float = 0.2
    name: ClassVar[str] = "trimmed-mean"

    def __check_init__(self):
        if not (isinstance(self.beta, int | float) and 0 <= self.beta < 0.5):
            raise UserError(f"trimmed-mean beta must be in [0, 0.5), got {self.beta!r}")

    def trimmed(self, clients: int) -> int:
        return math.floor(self.beta * clients)

    def __call__(self, updates, weights):
        b = self.trimmed(updates.shape[0])
        ordered = jnp.sort(updates, axis=0)
        return jnp.mean(ordered[b : updates.shape[0] - b], axis=0)

    def tolerates(self, clients: int) -> int:
        return self.trimmed(clients)

    def check(self, clients: int, bad: int) -> None:
        _check_tolerance(self, clients, bad, f"floor(beta K) with beta = {self.beta:g}")


class Krum(AbstractAggregator):
    """Krum (``select = 1``) and Multi-Krum (``select = m``) for ``bad`` declared bad clients."""

    bad: int = 1
    select: int = 1
    name: ClassVar[str] = "krum"

    def __check_init__(self):
        for key, value, low in (("bad", self.bad, 0), ("select", self.select, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"krum {key} must be an integer >= {low}, got {value!r}")

    def scores(self, updates: Float[Array, "k p"]) -> Float[Array, " k"]:
        """Each update's sum of squared distances to its ``K - bad - 2`` nearest others."""
        k = updates.shape[0]
        sq = jnp.sum(updates**2, axis=1)
        d = sq[:, None] + sq[None, :] - 2 * updates @ updates.T
        d = jnp.maximum(d, 0.0) + jnp.diag(jnp.full(k, jnp.inf, d.dtype))  # not to itself
        nearest = jnp.sort(d, axis=1)[:, : k - self.bad - 2]
        return jnp.sum(nearest, axis=1)

    def __call__(self, updates, weights):
        best = jnp.argsort(self.scores(updates))[: self.select]
        return jnp.mean(updates[best], axis=0)

    def tolerates(self, clients: int) -> int:
        return max((clients - 3) // 2, 0)

    def check(self, clients: int, bad: int) -> None:
        if clients < 2 * self.bad + 3:
            raise UserError(
                f"krum with {self.bad} declared bad client(s) needs at least "
                f"{2 * self.bad + 3} clients (K >= 2 f + 3), got {clients}"
            )
        if bad > self.bad:
            raise UserError(
                f"krum declares {self.bad} bad client(s) but the federation has {bad}; declare "
                f"at least {bad} (it then needs K >= {2 * bad + 3} clients)"
            )
        if self.select > clients - self.bad:
            raise UserError(
                f"multi-krum selects {self.select} updates; it may select at most K - f = "
                f"{clients - self.bad}"
            )


def _check_tolerance(rule: AbstractAggregator, clients: int, bad: int, limit: str) -> None:
    if bad > rule.tolerates(clients):
        raise UserError(
            f"{rule.name} over {clients} clients withstands at most {rule.tolerates(clients)} bad "
            f"client(s) ({limit}), got {bad}"
        )


AGGREGATORS: dict[str, type[AbstractAggregator]] = {
    cls.name: cls for cls in (Mean, Median, TrimmedMean, Krum)
}
