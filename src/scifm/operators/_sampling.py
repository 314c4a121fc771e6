"""Random directions and random coordinate subsets, drawn from an explicit key."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from scifm._checks import UserError


def random_subset(key: Array, d: int, s: int) -> Array:
    """``s`` distinct integers drawn uniformly from ``range(d)`` (Floyd's algorithm).

    Every subset of size ``s`` is equally likely, so each index is included with probability
    ``s / d`` and each ordered pair of distinct indices with probability
    ``s (s - 1) / (d (d - 1))``. Cost ``O(s^2)`` and no ``O(d)`` work, unlike
    ``jax.random.choice(..., replace=False)``, which permutes all ``d`` indices (too slow
    at ``d = 10^6`` and 100 points per step).
    """
    if not 0 < s <= d:
        raise UserError(f"need 0 < num_samples <= d to sample without replacement, got {s=}, {d=}")
    keys = jax.random.split(key, s)

    def body(m, chosen):
        j = d - s + m
        t = jax.random.randint(keys[m], (), 0, j + 1)
        seen = jnp.any(chosen == t)
        return chosen.at[m].set(jnp.where(seen, j, t).astype(jnp.int32))

    chosen = jnp.full((s,), -1, dtype=jnp.int32)
    return jax.lax.fori_loop(0, s, body, chosen)


def rademacher(key: Array, shape: tuple[int, ...], dtype) -> Array:
    """Independent +-1 entries with probability 1/2 each."""
    return jax.random.rademacher(key, shape, dtype=dtype)
