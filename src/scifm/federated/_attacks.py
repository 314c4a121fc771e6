"""Attacks, to test the robust rules: Byzantine updates and poisoned data.

A bad client either sends a corrupted update (:class:`RandomNoise`, :class:`SignFlip`,
:class:`ScaledUpdate`: applied to its update ``Delta = y - x`` before aggregation) or trains
honestly on corrupted data (:class:`PoisonedData`: its solutions are permuted across its
samples, so every input is paired with another input's solution; the regression analogue of
label flipping). Attacks touch only the model update: SCAFFOLD's control variates and the
clients' example counts are sent honestly.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm._checks import UserError, check_positive
from scifm.data import FieldSet


class AbstractAttack(eqx.Module):
    """What a bad client does; the honest default changes nothing."""

    name: ClassVar[str]

    def update(self, update, key):
        """The update a bad client sends instead of its honest ``update`` (one client's PyTree)."""
        return update

    def poison(self, data: FieldSet, seed: int) -> FieldSet:
        """The data a bad client trains on instead of its own."""
        return data


class NoAttack(AbstractAttack):
    """Honest clients: the attack that changes nothing."""

    name: ClassVar[str] = "none"


class RandomNoise(AbstractAttack):
    """The update replaced by Gaussian noise of standard deviation ``scale`` per weight."""

    scale: float = 1.0
    name: ClassVar[str] = "noise"

    def __check_init__(self):
        check_positive("noise scale", self.scale)

    def update(self, update, key):
        leaves, treedef = jax.tree.flatten(update)
        keys = jax.random.split(key, len(leaves))
        noisy = [
            self.scale * jax.random.normal(k, leaf.shape, leaf.dtype)
            for k, leaf in zip(keys, leaves, strict=True)
        ]
        return jax.tree.unflatten(treedef, noisy)


class SignFlip(AbstractAttack):
    """The update reversed and scaled: ``-scale Delta``."""

    scale: float = 1.0
    name: ClassVar[str] = "sign-flip"

    def __check_init__(self):
        check_positive("sign-flip scale", self.scale)

    def update(self, update, key):
        return jax.tree.map(lambda x: -self.scale * x, update)


class ScaledUpdate(AbstractAttack):
    """The update boosted: ``factor Delta`` (model replacement by one client)."""

    factor: float = 10.0
    name: ClassVar[str] = "scaled"

    def __check_init__(self):
        check_positive("scaled-update factor", self.factor)

    def update(self, update, key):
        return jax.tree.map(lambda x: self.factor * x, update)


class PoisonedData(AbstractAttack):
    """Honest training on solutions permuted across the client's samples."""

    name: ClassVar[str] = "poisoned-data"

    def poison(self, data: FieldSet, seed: int) -> FieldSet:
        n = len(data)
        if n < 2:
            raise UserError(f"{data.name}: poisoning permutes solutions; it needs >= 2 samples")
        rng = np.random.default_rng([seed, 2**20])
        order = rng.permutation(n)
        while n > 1 and np.any(order == np.arange(n)):  # a derangement: no sample keeps its own
            order = rng.permutation(n)
        f, c, u = data.take(np.arange(n))
        return FieldSet(
            f, c, u[order], f"{data.name} (poisoned)", data.input_names, data.output_names
        )


ATTACKS: dict[str, type[AbstractAttack]] = {
    cls.name: cls for cls in (NoAttack, RandomNoise, SignFlip, ScaledUpdate, PoisonedData)
}


def attack_updates(attack: AbstractAttack, updates, bad, key):
    """The round's updates (leading client axis) with the bad clients' replaced (``bad``: a
    boolean per client)."""
    keys = jax.random.split(key, bad.shape[0])
    attacked = jax.vmap(attack.update)(updates, keys)
    return jax.tree.map(
        lambda a, h: jnp.where(bad.reshape((-1,) + (1,) * (h.ndim - 1)), a, h), attacked, updates
    )
