"""Training losses and the evaluation metric (batched: leading axis = samples)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

from scifm._checks import UserError


def relative_l2_per_sample(
    pred: Float[Array, "b ..."], target: Float[Array, "b ..."]
) -> Float[Array, " b"]:
    """``||pred_i - target_i||_2 / ||target_i||_2`` for each sample (the study's metric)."""
    axes = tuple(range(1, pred.ndim))
    err = jnp.sqrt(jnp.sum((pred - target) ** 2, axis=axes))
    return err / jnp.sqrt(jnp.sum(target**2, axis=axes))


def relative_l2(pred, target) -> Float[Array, ""]:
    """Mean per-sample relative L2 error (default loss and the metric)."""
    return jnp.mean(relative_l2_per_sample(pred, target))


def summed_squared_error(pred, target) -> Float[Array, ""]:
    """Squared error summed over each sample, averaged over the batch (the TL-scaling code's loss)."""
    return jnp.sum((pred - target) ** 2) / pred.shape[0]


LOSSES: dict[str, Callable] = {"relative_l2": relative_l2, "sse": summed_squared_error}


def get_loss(name: str) -> Callable:
    if name not in LOSSES:
        raise UserError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]
