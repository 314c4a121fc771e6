"""Tests check mathematics in float64; JAX is told so before anything imports it."""

import jax

jax.config.update("jax_enable_x64", True)
