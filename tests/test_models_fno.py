"""The FNO against direct computations: dense-DFT spectral layer, resolution behaviour, sizes."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm import models
from scifm.models import FNO, SpectralConv2d


def _dense_spectral(x, weight, m):
    """The spectral layer with explicit DFT matrices (no FFT): the definition, written out."""
    c, h, w = x.shape
    rows, cols = np.arange(h), np.arange(w)
    fh = np.exp(-2j * np.pi * np.outer(rows, rows) / h)  # forward DFT along axis 0
    fw = np.exp(-2j * np.pi * np.outer(cols, cols) / w)[:, : w // 2 + 1]  # half spectrum
    spectrum = np.einsum("kh,chw,wl->ckl", fh, x, fw) / np.sqrt(h * w)  # orthonormal rfft2
    wc = weight[0] + 1j * weight[1]  # (2, m, m, cin, cout)
    y = np.zeros((wc.shape[-1], h, w // 2 + 1), complex)
    y[:, :m, :m] = np.einsum("ixy,xyio->oxy", spectrum[:, :m, :m], wc[0])
    y[:, h - m :, :m] = np.einsum("ixy,xyio->oxy", spectrum[:, h - m :, :m], wc[1])
    z = np.einsum("hk,okl->ohl", np.conj(fh), y)  # inverse along axis 0
    weights = np.where((np.arange(w // 2 + 1) == 0) | (np.arange(w // 2 + 1) == w // 2), 1.0, 2.0)
    phase = np.exp(2j * np.pi * np.outer(np.arange(w // 2 + 1), cols) / w)
    return np.einsum("l,ohl,lw->ohw", weights, z, phase).real / np.sqrt(h * w)


@pytest.mark.parametrize("shape, modes", [((3, 16, 16), 4), ((2, 12, 20), 5), ((4, 32, 32), 16)])
def test_spectral_layer_matches_dense_dft(shape, modes):
    key_w, key_x = jax.random.split(jax.random.key(shape[1] + modes))
    layer = SpectralConv2d(shape[0], 3, modes, key=key_w)
    layer = eqx.tree_at(lambda l: l.weight, layer, jax.random.normal(key_w, layer.weight.shape))
    x = jax.random.normal(key_x, shape)
    expected = _dense_spectral(np.asarray(x), np.asarray(layer.weight), modes)
    np.testing.assert_allclose(
        np.asarray(eqx.filter_jit(layer)(x)), expected, atol=1e-12 * np.abs(expected).max()
    )


@pytest.mark.parametrize(
    "shape, modes", [((3, 16, 16), 4), ((2, 12, 8), 5), ((2, 10, 14), 5), ((4, 32, 32), 16)]
)
def test_spectral_layer_is_irfft2_of_the_mixed_rfft2(shape, modes):
    """Against NumPy's FFT, the layer's definition: all rows kept (H = 2 modes), the Nyquist
    column kept (W / 2 + 1 = modes), odd and even widths."""
    key_w, key_x = jax.random.split(jax.random.key(7 * shape[2] + modes))
    layer = SpectralConv2d(shape[0], 3, modes, key=key_w)
    layer = eqx.tree_at(lambda l: l.weight, layer, jax.random.normal(key_w, layer.weight.shape))
    x = np.asarray(jax.random.normal(key_x, shape))
    m, (_, h, w) = modes, shape
    spectrum = np.fft.rfft2(x, norm="ortho")
    wc = np.asarray(layer.weight[0]) + 1j * np.asarray(layer.weight[1])
    y = np.zeros((3, h, w // 2 + 1), complex)
    y[:, :m, :m] = np.einsum("ixy,xyio->oxy", spectrum[:, :m, :m], wc[0])
    y[:, h - m :, :m] = np.einsum("ixy,xyio->oxy", spectrum[:, h - m :, :m], wc[1])
    expected = np.fft.irfft2(y, s=(h, w), norm="ortho")
    got = np.asarray(eqx.filter_jit(layer)(jnp.asarray(x)))
    np.testing.assert_allclose(got, expected, atol=1e-12 * np.abs(expected).max())
    # float32, as the models train: a few ulps of the output's scale
    got32 = eqx.filter_jit(jax.tree.map(lambda a: a.astype(np.float32), layer))(
        jnp.asarray(x, np.float32)
    )
    assert got32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got32), expected, atol=2e-6 * np.abs(expected).max())


def test_spectral_layer_refuses_too_many_modes():
    layer = SpectralConv2d(2, 2, 16, key=jax.random.key(0))
    with pytest.raises(ValueError, match="cannot hold 16 Fourier modes"):
        layer(jnp.zeros((2, 16, 16)))


def _band_limited(n):
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    f = np.sin(2 * np.pi * X) * np.cos(4 * np.pi * Y) + 0.5 * np.cos(2 * np.pi * (X + 2 * Y))
    return jnp.asarray(np.stack([f, np.full_like(f, 0.3), np.full_like(f, -0.2)]))


def test_same_function_at_two_resolutions_gives_the_same_output():
    """Orthonormal FFTs make each Fourier layer resolution independent: a band-limited input
    sampled at 64 and at 128 gives outputs that agree on the common grid points."""
    net = FNO(3, 2, 16, 6, key=jax.random.key(0))
    run = eqx.filter_jit(net)
    coarse, fine = np.asarray(run(_band_limited(64))), np.asarray(run(_band_limited(128)))
    assert coarse.shape == (2, 64, 64) and fine.shape == (2, 128, 128)
    np.testing.assert_allclose(fine[:, ::2, ::2], coarse, atol=1e-9 * np.abs(coarse).max())


def test_grid_channels_change_the_input_width():
    net = FNO(3, 1, 8, 2, grid=True, key=jax.random.key(0))
    assert net.lift.weight.shape == (8, 5)
    assert eqx.filter_jit(net)(_band_limited(16)).shape == (1, 16, 16)


def test_wrong_input_shape_is_refused():
    net = FNO(3, 1, 8, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"expects one sample \(3, H, W\)"):
        net(jnp.zeros((4, 16, 16)))


def test_reference_parameter_counts():
    """The reference code's models (4 input channels): width 64/modes 32 and width 16/modes 4."""

    def count(width, modes):  # shapes only: no 67M-parameter allocation
        return models.count_parameters(
            jax.eval_shape(lambda: FNO(4, 1, width, modes, key=jax.random.key(0)))
        )

    assert count(64, 32) == 67_134_273
    assert count(16, 4) == 67_281


def test_presets_span_64k_to_268m():
    counts = [p.parameters() for p in models.PRESETS.values()]
    assert counts == sorted(counts)
    assert 60e3 < counts[0] < 70e3 and 260e6 < counts[-1] < 270e6
    assert models.get_preset("fno-4m").parameters() == models.count_parameters(
        models.get_preset("fno-4m").build(key=jax.random.key(0))
    )
    with pytest.raises(ValueError, match="valid presets: fno-64k"):
        models.get_preset("fno-2m")


def test_gelu_and_its_derivative_are_the_exact_ones():
    """Against SciPy's erfc in float64: the value x Phi(x) and the derivative Phi + x phi, to
    round-off in float64 and within 1e-6 absolute in float32 (in the negative tail ``1 + erf``
    cancels: about |x| float32 ulps of 1; ``jax.nn.gelu``'s erfc form is off by 5e-4 near
    x = 2 in float32 on the CPU)."""
    from scipy.special import erfc

    from scifm.models._fno import gelu

    x = np.linspace(-12.0, 12.0, 2001)
    phi = 0.5 * erfc(-x / np.sqrt(2.0))
    value, slope = x * phi, phi + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    for dtype, tol in ((jnp.float64, 1e-14), (jnp.float32, 1e-6)):
        y = jnp.asarray(x, dtype)
        np.testing.assert_allclose(gelu(y), value, rtol=tol, atol=tol)
        np.testing.assert_allclose(jax.vmap(jax.grad(gelu))(y), slope, rtol=tol, atol=tol)
