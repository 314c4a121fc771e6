"""The input normaliser of operator models."""

import jax
import numpy as np
import pytest

from scifm import data, models, pdes


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


def test_normaliser_of_a_mixture_uses_the_typical_nonzero_magnitude(tmp_path):
    a = data.generate(pdes.Poisson(), 16, 16, 0, tmp_path / "a.h5")
    b = data.generate(pdes.Helmholtz(), 48, 16, 1, tmp_path / "b.h5")
    fa, fb = data.FieldSet.load(a), data.FieldSet.load(b)
    mixed = models.Normalizer.fit(data.FieldSet.concatenate([fa, fb]))
    k12 = list(pdes.COEFFICIENT_NAMES).index("k12")
    omega = list(pdes.COEFFICIENT_NAMES).index("omega")
    # k12 is zero for every Helmholtz sample: its scale is still the Poisson median
    assert mixed.coefficient_scale[k12] == pytest.approx(np.median(np.abs(fa.coefficients[:, k12])))
    assert mixed.coefficient_scale[omega] == pytest.approx(
        np.median(np.abs(fb.coefficients[:, omega]))
    )
    vx = list(pdes.COEFFICIENT_NAMES).index("vx")
    assert np.isnan(mixed.coefficient_scale[vx])  # never seen: marked, used as 1
    f, c, _ = fa.take(np.arange(2))
    plain = models.Normalizer(
        mixed.source_scale, np.where(np.isnan(mixed.coefficient_scale), 1, mixed.coefficient_scale)
    )
    np.testing.assert_array_equal(jax.vmap(mixed)(f, c), jax.vmap(plain)(f, c))
    # fine-tuning on advection-diffusion fills in the velocity scale from its data, nothing else
    d = data.FieldSet.load(data.generate(pdes.AdvectionDiffusion(), 8, 16, 2, tmp_path / "d.h5"))
    done = mixed.complete(d)
    assert done.coefficient_scale[vx] == pytest.approx(np.median(np.abs(d.coefficients[:, vx])))
    keep = np.arange(6) != vx
    keep[vx + 1] = False
    np.testing.assert_array_equal(done.coefficient_scale[keep], mixed.coefficient_scale[keep])


# -- methods, points, results.csv -------------------------------------------------------------------
