"""Fourier neural operator (FNO) for 2-D fields, the model of the transfer study.

Architecture (Li et al. 2021, as used by Subramanian et al. 2023): a pointwise lift to ``width``
channels; four Fourier layers ``v -> act(K v + W v)`` where ``K`` keeps the ``modes`` lowest
frequencies of the real 2-D FFT in both directions (positive and negative along the full first
axis, non-negative along the half-spectrum axis) with one complex ``width x width`` matrix per
kept mode, and ``W`` is a pointwise linear skip; GELU between layers, not after the last; then a
pointwise MLP ``width -> 2 width -> out`` with GELU. One sample ``(C, H, W)`` in,
``(C_out, H, W)`` out, at any resolution with ``H, W >= 2 * modes``.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from scifm._checks import UserError


class Pointwise(eqx.Module):
    """A linear map over channels applied at every grid point: ``(C_in, H, W) -> (C_out, H, W)``."""

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, *, key: PRNGKeyArray):
        # PyTorch's Conv2d/Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / math.sqrt(in_channels)
        wkey, bkey = jax.random.split(key)
        self.weight = jax.random.uniform(
            wkey, (out_channels, in_channels), minval=-bound, maxval=bound
        )
        self.bias = jax.random.uniform(bkey, (out_channels,), minval=-bound, maxval=bound)

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        return jnp.einsum("oc,chw->ohw", self.weight, x) + self.bias[:, None, None]


@functools.lru_cache(maxsize=64)
def _dft_matrices(h: int, w: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The truncated orthonormal real 2-D DFT and its inverse as four real matrices.

    Complex numbers are written as (re, im) pairs on an axis of size 2, and a complex matrix
    ``F`` acting on them as the real block ``[[Re F, -Im F], [Im F, Re F]]``:

    - ``fw`` (w, 2, m): along the last axis, ``x -> (Re, Im) of sum_n x_n e^{-2 pi i n k / w}``
      for the kept columns ``k < m``;
    - ``fh`` (2m, 2, h, 2): along the first axis, the kept rows ``[0, m)`` and ``[h - m, h)``;
    - ``gh`` (h, 2, 2m, 2): the inverse along the first axis from the kept rows;
    - ``gw`` (2, m, w): ``Re(sum_k c_k z_k e^{2 pi i k n / w})`` with ``c_k = 2`` except 1 for
      the constant and the Nyquist column: ``irfft``'s reading of a half spectrum (imaginary
      parts of those two columns ignored), all other columns zero.

    Each carries its ``1 / sqrt(size)`` (``norm="ortho"``). Built in float64 once per shape.
    """
    rows = np.concatenate([np.arange(m), np.arange(h - m, h)])
    cols = np.arange(m)
    ew = np.exp(-2j * np.pi * np.outer(np.arange(w), cols) / w) / np.sqrt(w)  # (w, m)
    eh = np.exp(-2j * np.pi * np.outer(rows, np.arange(h)) / h) / np.sqrt(h)  # (2m, h)
    c = np.where((cols == 0) | (2 * cols == w), 1.0, 2.0)
    fw = np.stack([ew.real, ew.imag], axis=1)
    gw = np.stack([c[:, None] * ew.T.real, c[:, None] * ew.T.imag])  # Re(z conj(ew)) terms
    return fw, _real_block(eh), _real_block(np.conj(eh).T), gw


def _real_block(f: np.ndarray) -> np.ndarray:
    """Complex (p, q) as the real (p, 2, q, 2) map of (re, im) pairs."""
    block = np.empty((f.shape[0], 2, f.shape[1], 2))
    block[:, 0, :, 0], block[:, 0, :, 1] = f.real, -f.imag
    block[:, 1, :, 0], block[:, 1, :, 1] = f.imag, f.real
    return block


class SpectralConv2d(eqx.Module):
    """``v -> irfft2(R . rfft2(v))`` with ``R`` non-zero on the ``modes`` lowest frequencies.

    The kept block is rows ``[0, modes)`` and ``[H - modes, H)`` of the first frequency axis and
    columns ``[0, modes)`` of the half-spectrum axis (``rfft2``, orthonormal scaling). Weights are
    stored as real and imaginary parts, shape ``(2 [re, im], 2 [pos, neg rows], modes, modes,
    in, out)``; initialised ``U[0, 1) / (in * out)`` in both parts as in the TL-scaling code.

    Computed without FFTs: only ``2 modes x modes`` of the ``H x (W/2 + 1)`` frequencies are
    used, so the transform to them, the mixing and the transform back are dense real matrix
    products (:func:`_dft_matrices`, complex arithmetic on (re, im) pairs), which XLA runs faster
    than the FFTs and scatters they replace at these sizes (a layer's forward and backward
    pass 1.4-7x faster on the presets on an Intel Xeon, BENCHMARKS.md). The same function
    to rounding: a few float32 ulps from ``irfft2(R . rfft2(v))`` (tested against NumPy's FFT).
    """

    weight: Float[Array, "2 2 m m cin cout"]
    modes: int = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, modes: int, *, key: PRNGKeyArray):
        scale = 1.0 / (in_channels * out_channels)
        shape = (2, 2, modes, modes, in_channels, out_channels)
        # drawn flat and reshaped: XLA:CPU takes seconds to compile a rank-6 random draw
        self.weight = scale * jax.random.uniform(key, (math.prod(shape),)).reshape(shape)
        self.modes = modes

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        _, h, w = x.shape
        m = self.modes
        if h < 2 * m or w // 2 + 1 < m:
            raise UserError(f"a {h}x{w} grid cannot hold {m} Fourier modes; need H, W >= {2 * m}")
        fw, fh, gh, gw = (jnp.asarray(a, x.dtype) for a in _dft_matrices(h, w, m))
        spectrum = jnp.einsum("chw,wsk->chsk", x, fw)  # (cin, h, re/im, m)
        spectrum = jnp.einsum("rsht,chtk->crsk", fh, spectrum)  # (cin, 2m rows, re/im, m)
        weight = self.weight.reshape(2, 2 * m, m, *self.weight.shape[-2:])  # (re/im, 2m, m, ...)
        # all four real products (re, im of the input) x (re, im of the weight) in one dot,
        # without materialising a real block copy of the weight
        p = jnp.einsum("crsk,qrkco->osqrk", spectrum, weight)
        mixed = jnp.stack([p[:, 0, 0] - p[:, 1, 1], p[:, 0, 1] + p[:, 1, 0]], 2)  # (cout, 2m, 2, m)
        mixed = jnp.einsum("hsrt,ortk->ohsk", gh, mixed)  # (cout, h, re/im, m)
        return jnp.einsum("ohsk,skw->ohw", mixed, gw)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@jax.custom_vjp
def gelu(x: Array) -> Array:
    """Exact GELU ``x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`` (the erf form, as PyTorch's).

    Its derivative ``Phi(x) + x phi(x)`` is computed with the value, in the same pass, and kept
    for the backward pass, which is then one product. Against ``jax.nn.gelu`` (the ``erfc``
    form, left to autodiff), measured side by side: an fno-1m or fno-4m training step at 64x64
    7% faster on a 2-core AMD EPYC, and more accurate in float32 on the CPU (within 1e-6 of
    the exact value and derivative, tested; ``jax.nn.gelu`` is off by 5e-4 near ``x = 2``).
    Below ``x = -3`` the erf form cancels (``1 + erf``): errors up to ~1e-6 absolute there.
    """
    return x * _normal_cdf(x)


def _normal_cdf(x):
    return 0.5 * (1 + jax.lax.erf(x * _SQRT_HALF))


def _gelu_forward(x):
    cdf = _normal_cdf(x)  # the same value as gelu(x) without a gradient
    return x * cdf, cdf + x * jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI


gelu.defvjp(_gelu_forward, lambda slope, g: (g * slope,))


class FNO(eqx.Module):
    """2-D Fourier neural operator; see the module docstring.

    Args:
        in_channels: input channels (scifm datasets: 1 source + 6 coefficients = 7).
        out_channels: output channels.
        width: channels inside the Fourier layers.
        modes: Fourier modes kept per direction.
        layers: number of Fourier layers (4 in the study).
        grid: append the (x, y) coordinates as two more input channels (off, as in the TL-scaling code).
        key: initialisation key.
    """

    lift: Pointwise
    spectral: list[SpectralConv2d]
    skip: list[Pointwise]
    project_hidden: Pointwise
    project_out: Pointwise
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    modes: int = eqx.field(static=True)
    grid: bool = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        modes: int,
        *,
        layers: int = 4,
        grid: bool = False,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("width", width),
            ("modes", modes),
            ("layers", layers),
        ):
            if not (isinstance(value, int) and value >= 1):
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        keys = jax.random.split(key, 2 * layers + 3)
        lifted = in_channels + (2 if grid else 0)
        self.lift = Pointwise(lifted, width, key=keys[0])
        self.spectral = [SpectralConv2d(width, width, modes, key=k) for k in keys[1 : layers + 1]]
        self.skip = [Pointwise(width, width, key=k) for k in keys[layers + 1 : 2 * layers + 1]]
        self.project_hidden = Pointwise(width, 2 * width, key=keys[-2])
        self.project_out = Pointwise(2 * width, out_channels, key=keys[-1])
        self.in_channels, self.out_channels = in_channels, out_channels
        self.width, self.modes, self.grid = width, modes, grid

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        if x.ndim != 3 or x.shape[0] != self.in_channels:
            raise UserError(f"FNO expects one sample ({self.in_channels}, H, W), got {x.shape}")
        if self.grid:
            _, h, w = x.shape
            gx, gy = jnp.meshgrid(jnp.arange(h) / h, jnp.arange(w) / w, indexing="ij")
            x = jnp.concatenate([x, gx[None].astype(x.dtype), gy[None].astype(x.dtype)])
        v = self.lift(x)
        last = len(self.spectral) - 1
        for i, (k, w) in enumerate(zip(self.spectral, self.skip, strict=True)):
            v = k(v) + w(v)
            if i < last:
                v = gelu(v)
        return self.project_out(gelu(self.project_hidden(v)))


def count_parameters(model: eqx.Module) -> int:
    """Number of trainable scalars (a complex weight counts as two)."""
    leaves = jax.tree_util.tree_leaves(model)  # arrays or shapes (from jax.eval_shape)
    return sum(
        math.prod(x.shape)
        for x in leaves
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)
    )
