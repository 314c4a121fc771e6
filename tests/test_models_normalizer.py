"""The input normaliser of operator models."""

import jax
import numpy as np

from scifm import models


def test_normalizer_encodes_the_scaling_symmetry():
    """(a f, a c) has the solution of (f, c): the normalised inputs must be identical."""
    norm = models.Normalizer(
        jax.numpy.asarray(0.2), jax.numpy.asarray([0.01, 0.01, 0.005, 1.0, 1.0, 1.0])
    )
    rng = np.random.default_rng(0)
    f, c = rng.normal(size=(1, 8, 8)), rng.uniform(size=6)
    np.testing.assert_allclose(norm(f, c), norm(7.5 * f, 7.5 * c), rtol=1e-6)
    x = np.asarray(norm(f, c))
    s = np.sqrt(np.mean(f**2)) / 0.2
    np.testing.assert_allclose(x[0], f[0] / s, rtol=1e-6)
    np.testing.assert_allclose(x[3, 0, 0], c[2] / (s * 0.005), rtol=1e-6)
