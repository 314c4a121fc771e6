"""Fine-tuning strategies: which parameters move, and how, when training starts from weights.

A strategy wraps the base optimizer (Adam scaled by the learning rate) into another Optax
transformation. Its ``init`` sees the parameters training starts from — the pre-trained weights
``theta_0`` — so a strategy that holds some of them fixed, or pulls back towards them, keeps
what it needs in its optimizer state (saved and resumed with it); nothing else in the training
loop knows which strategy runs. Strategies are frozen dataclasses, hashable, so one compiled
step serves every run with the same one. Names exist only at the CLI/config boundary
(:func:`get_strategy`).

The strategies (``theta`` the parameters, ``u`` the base optimizer's update, ``g`` the
gradient):

- ``full``: ``theta += u`` for every parameter (the TL-scaling study's fine-tuning).
- ``last``: only the projection MLP at the end trains (``project_hidden``, ``project_out``), the rest stays at
  ``theta_0`` bit for bit.
- ``magnitude``: in every tensor, the ``int(0.5 * size)`` entries of largest ``|theta_0|`` stay
  at ``theta_0`` (the SPIDER paper's magnitude-mask baseline).
- ``l2sp``: every parameter trains on ``loss + alpha/2 ||theta - theta_0||^2`` (L2-SP, Li et
  al. 2018), added to the gradient before Adam.
- ``spider``: importance-aware selection after Huang et al. 2025 (arXiv 2411.10928); see
  :class:`Spider`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from scifm._checks import UserError


class AbstractStrategy(ABC):
    """How fine-tuning updates the parameters; see the module docstring."""

    name: ClassVar[str]

    @abstractmethod
    def wrap(self, inner: optax.GradientTransformation) -> optax.GradientTransformation:
        """The optimizer of this strategy around ``inner`` (Adam with the learning rate applied)."""


@dataclass(frozen=True)
class Full(AbstractStrategy):
    """Every parameter trains (the TL-scaling study's fine-tuning, and training from scratch)."""

    name: ClassVar[str] = "full"

    def wrap(self, inner):
        return inner


PROJECTION = ("project_hidden", "project_out")  # the FNO's final pointwise MLP


class _MaskState(NamedTuple):
    frozen: optax.Params  # 1 where the entry keeps its pre-trained value, else 0
    inner: optax.OptState


def _masked(inner, frozen_of) -> optax.GradientTransformationExtraArgs:
    """``inner`` with the updates of entries ``frozen_of(params)`` marks set to exactly zero."""

    def init(params):
        return _MaskState(frozen_of(params), inner.init(params))

    def update(grads, state, params=None, **extra):
        grads = jax.tree.map(lambda g, m: jnp.where(m, 0, g), grads, state.frozen)
        updates, inner_state = inner.update(grads, state.inner, params, **extra)
        updates = jax.tree.map(
            lambda u, m: jnp.where(m, 0, u).astype(u.dtype), updates, state.frozen
        )
        return updates, _MaskState(state.frozen, inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


@dataclass(frozen=True)
class Last(AbstractStrategy):
    """Only the final projection (the pointwise MLP after the Fourier layers) trains."""

    name: ClassVar[str] = "last"

    def wrap(self, inner):
        def frozen_of(params):
            def mark(path, p):
                head = any(getattr(k, "name", None) in PROJECTION for k in path)
                return jnp.full(p.shape, not head, bool)

            return jax.tree_util.tree_map_with_path(mark, params)

        return _masked(inner, frozen_of)


def largest_magnitudes(x: jax.Array, ratio: float = 0.5) -> jax.Array:
    """Boolean mask of the ``int(ratio * size)`` entries of largest ``|x|`` (ties: lower index)."""
    k = int(x.size * ratio)
    order = jnp.argsort(-jnp.abs(x).ravel(), stable=True)
    mask = jnp.zeros(x.size, bool).at[order[:k]].set(True)
    return mask.reshape(x.shape)


@dataclass(frozen=True)
class Magnitude(AbstractStrategy):
    """The entries of largest pre-trained magnitude (half of each tensor) stay fixed."""

    name: ClassVar[str] = "magnitude"
    ratio: float = 0.5

    def wrap(self, inner):
        return _masked(
            inner, lambda params: jax.tree.map(lambda p: largest_magnitudes(p, self.ratio), params)
        )


class _AnchorState(NamedTuple):
    anchor: optax.Params  # theta_0
    inner: optax.OptState


@dataclass(frozen=True)
class L2SP(AbstractStrategy):
    """L2-SP: the gradient of ``alpha/2 ||theta - theta_0||^2`` is added before Adam."""

    name: ClassVar[str] = "l2sp"
    alpha: float = 1e-2

    def wrap(self, inner):
        alpha = self.alpha

        def init(params):
            return _AnchorState(params, inner.init(params))

        def update(grads, state, params=None, **extra):
            grads = jax.tree.map(lambda g, p, a: g + alpha * (p - a), grads, params, state.anchor)
            updates, inner_state = inner.update(grads, state.inner, params, **extra)
            return updates, _AnchorState(state.anchor, inner_state)

        return optax.GradientTransformationExtraArgs(init, update)


def importance_rank(z: jax.Array) -> jax.Array:
    """SPIDER's within-tensor rank ``sigmoid((|z| - mean|z|) / std|z|)`` (std with N - 1).

    Where the SPIDER code divides 0 by 0 (a one-entry tensor, or all ``|z|`` equal) it yields
    NaN and so freezes that tensor; here the standardised value is 0 there (rank 1/2). An
    all-zero tensor has rank 0, as in the SPIDER code.
    """
    a = jnp.abs(z)
    if z.size < 2:
        std = jnp.zeros(())
    else:
        std = jnp.std(a, ddof=1)
    standard = jnp.where(std > 0, (a - jnp.mean(a)) / jnp.where(std > 0, std, 1), 0.0)
    return jnp.where(jnp.all(a == 0), 0.0, jax.nn.sigmoid(standard))


def spider_weights(i_pre: jax.Array, i_ft: jax.Array) -> jax.Array:
    """``c = I_ft / (I_pre + I_ft)`` where ``I_pre < I_ft`` else 0; then ``min(c / mean(c != 0), 1)``."""
    c = jnp.where(i_pre < i_ft, i_ft / (i_pre + i_ft), 0.0)
    nonzero = c != 0
    mean = jnp.sum(c) / jnp.maximum(jnp.sum(nonzero), 1)
    return jnp.minimum(jnp.where(jnp.any(nonzero), c / jnp.where(mean > 0, mean, 1), c), 1.0)


class _SpiderState(NamedTuple):
    anchor: optax.Params  # theta_0
    pre_rank: optax.Params  # I_pre = rank(theta_0), computed once
    grad_sum: optax.Params  # G_t, the running sum of gradients
    inner: optax.OptState


@dataclass(frozen=True)
class Spider(AbstractStrategy):
    """Importance-aware fine-tuning (SPIDER, Huang et al., arXiv 2411.10928), element-wise.

    Per tensor: ``I_pre = rank(theta_0)`` once; each step ``G_t = G_{t-1} + g_t`` (raw
    gradients), ``I_ft = rank(G_t)``, ``c = spider_weights(I_pre, I_ft)``; then the step
    ``theta_step = theta + u`` is blended back towards the pre-trained weights,
    ``theta <- (1 - c) theta_0 + c theta_step``. An entry more important to pre-training
    than to the downstream task (``I_pre >= I_ft``) is therefore reset to ``theta_0`` at every
    step; the others move with weight ``c`` in (0, 1]. This is the authors' code's rule
    (``Code/train/SPIDER.py``), as an Optax transformation whose state holds ``theta_0``,
    ``I_pre`` and ``G_t`` (3 extra copies of the parameters, saved and resumed with the
    optimizer state). Differences: no gradient clipping before the sum (the SPIDER code sums
    the clipped gradients of its trainer), and the 0/0 case of :func:`importance_rank`.
    """

    name: ClassVar[str] = "spider"

    def wrap(self, inner):
        def init(params):
            zeros = jax.tree.map(jnp.zeros_like, params)
            return _SpiderState(
                params, jax.tree.map(importance_rank, params), zeros, inner.init(params)
            )

        def update(grads, state, params=None, **extra):
            updates, inner_state = inner.update(grads, state.inner, params, **extra)
            grad_sum = jax.tree.map(jnp.add, state.grad_sum, grads)

            def blend(u, p, anchor, pre, g):
                c = spider_weights(pre, importance_rank(g)).astype(p.dtype)
                # theta_new = (1 - c) theta_0 + c (p + u), as an update to p
                return ((1 - c) * anchor + c * (p + u) - p).astype(p.dtype)

            updates = jax.tree.map(blend, updates, params, state.anchor, state.pre_rank, grad_sum)
            return updates, _SpiderState(state.anchor, state.pre_rank, grad_sum, inner_state)

        return optax.GradientTransformationExtraArgs(init, update)


STRATEGIES: dict[str, type[AbstractStrategy]] = {
    cls.name: cls for cls in (Full, Last, Magnitude, L2SP, Spider)
}


def get_strategy(name: str, **options) -> AbstractStrategy:
    """The strategy registered under ``name``; unknown names list the valid ones."""
    if name not in STRATEGIES:
        raise UserError(
            f"unknown fine-tuning strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}"
        )
    return STRATEGIES[name](**options)
