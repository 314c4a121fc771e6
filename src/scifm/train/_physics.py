"""Physics-informed losses: the residual of a known equation on a model's predictions.

A pre-trained operator can be fine-tuned on a task whose equation scifm knows without any
solution: only sources and coefficients are needed, and the loss is how far the prediction is
from satisfying the equation. The residual is taken exactly as the generators define "exact"
(``scifm.pdes._spectral``): a grid function is its trigonometric interpolant on the periodic
square with the Nyquist modes removed, derivatives are spectral, and a product with a
coefficient field is taken on the grid. The stored solutions of ``scifm generate`` therefore
have a residual at round-off, and a model whose prediction is the stored solution has loss 0.

**The residual, per sample.** With ``u^``, ``f^`` the real 2-D FFTs and ``K`` the modes kept
(the band, without the operator's singular modes: the constant mode of Poisson, Darcy and
advection-diffusion, an exactly resonant Helmholtz shell),

    loss = sqrt(sum_K |P (L u - f)^|^2 + sum_not-K |u^|^2) / sqrt(sum_K |P f^|^2)

(Parseval-weighted sums over the half spectrum, so these are grid L2 norms). The second term
asks for what the generators return off ``K``: the minimum-norm, band-limited solution (zero
mean, no Nyquist content); without it the mean of ``u`` would be free. ``P`` is a
preconditioner: by default the inverse of the operator's diffusion symbol plus ``|omega|``
(for Darcy the Poisson symbol of the mean permeability), so the residual is measured in the
units of ``u``. For Poisson ``P L`` is the identity on ``K`` and the loss *is* the relative L2
error of the prediction, with no label; for Darcy it is that of the mean-permeability problem,
and close to it while the contrast is moderate. Without the preconditioner (``plain``) the
loss is ``||L u - f|| / ||f||``, which weights the highest modes by ``|k|^4``: what a
finite-difference PINN loss does, and what makes it hard to train (the ablation in the README).

**Labels mixed in.** :meth:`PhysicsLoss.__call__` takes the batch's targets too; rows whose
target is finite add their relative L2 error to their residual, and rows marked unlabelled by
NaN targets (:func:`unlabelled`) contribute the residual alone. NaN never reaches the
gradient: the labelled term is computed on a finite stand-in and masked.

For constant-coefficient tasks the labels cost one FFT solve each, so the loss is the point
only where solutions are expensive; it is shown on them because there it can be checked
exactly. The operator for Darcy-like data is where label-free training matters.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from scifm._checks import UserError
from scifm.data import FieldSet
from scifm.train._losses import relative_l2_per_sample

SINGULAR_RTOL = 1e-6  # the generators use 1e-10 in float64; float32 symbols need a wider margin


def _wavenumbers(h: int, w: int):
    """Angular wavenumbers of the real 2-D FFT on an ``h x w`` grid: (h, 1) and (1, w//2+1)."""
    kx = 2 * np.pi * np.fft.fftfreq(h, d=1.0 / h)
    ky = 2 * np.pi * np.fft.rfftfreq(w, d=1.0 / w)
    return jnp.asarray(kx[:, None]), jnp.asarray(ky[None, :])


def _band(h: int, w: int) -> np.ndarray:
    """True on the modes every field keeps: all but the Nyquist row and column."""
    keep = np.ones((h, w // 2 + 1), dtype=bool)
    keep[h // 2, :] = False
    keep[:, w // 2] = False
    return keep


def _parseval(w: int) -> np.ndarray:
    """Weights of the half spectrum: ``sum(x**2) = sum(weight * |rfft2(x)|**2) / (h w)``."""
    weight = np.full((1, w // 2 + 1), 2.0)
    weight[0, 0] = 1.0
    if w % 2 == 0:
        weight[0, -1] = 1.0
    return weight


class AbstractOperator(eqx.Module):
    """A linear operator ``L`` on the periodic grid, applied in Fourier space (one batch).

    ``inputs`` names the input channels the operator reads (the source ``f`` first).
    """

    inputs: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def apply(self, u_hat, f, c, kx, ky, band):
        """``(L u)^`` on the band (B, H, W//2+1) for ``u_hat`` zero off the band."""

    @abc.abstractmethod
    def scale(self, f, c, kx, ky):
        """``(M, singular)``: a positive symbol ``M`` (the operator's size at each mode), and
        where ``L`` is singular (its null space), each (B, H, W//2+1)."""

    def precondition(self, r_hat, f, c, kx, ky, kept):
        """``P r`` for a residual on the kept modes: by default ``r / M``."""
        m, _ = self.scale(f, c, kx, ky)
        return r_hat / jnp.where(kept, m, 1.0)


class ConstantCoefficients(AbstractOperator):
    """``-(k11 u_xx + 2 k12 u_xy + k22 u_yy) + vx u_x + vy u_y - omega u`` (``pdes.EQUATION``),
    from the six coefficients of each sample: Poisson, advection-diffusion, Helmholtz."""

    inputs: ClassVar[tuple[str, ...]] = ("f",)

    def _symbol(self, c, kx, ky):
        k11, k22, k12, vx, vy, omega = (c[:, i, None, None] for i in range(6))
        diffusion = k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2
        return diffusion, diffusion - omega + 1j * (vx * kx + vy * ky), jnp.abs(omega)

    def apply(self, u_hat, f, c, kx, ky, band):
        return self._symbol(c, kx, ky)[1] * u_hat

    def scale(self, f, c, kx, ky):
        diffusion, symbol, omega = self._symbol(c, kx, ky)
        size = jnp.abs(symbol)
        singular = size <= SINGULAR_RTOL * jnp.max(size, axis=(-2, -1), keepdims=True)
        return diffusion + omega, singular


class VariableDiffusion(AbstractOperator):
    """``-div(a grad u)`` with the coefficient field ``a`` the second input channel (Darcy), as
    ``pdes.Darcy`` discretises it: spectral derivatives, the product ``a grad u`` on the grid."""

    inputs: ClassVar[tuple[str, ...]] = ("f", "a")

    def apply(self, u_hat, f, c, kx, ky, band):
        h, w = f.shape[-2:]
        a = f[:, 1]
        ux = jnp.fft.irfft2(1j * kx * u_hat, s=(h, w))
        uy = jnp.fft.irfft2(1j * ky * u_hat, s=(h, w))
        flux_x, flux_y = jnp.fft.rfft2(a * ux), jnp.fft.rfft2(a * uy)
        return -(1j * kx * flux_x + 1j * ky * flux_y)

    def scale(self, f, c, kx, ky):
        mean = jnp.mean(f[:, 1], axis=(-2, -1))[:, None, None]
        laplacian = kx**2 + ky**2
        return mean * laplacian, jnp.broadcast_to(laplacian == 0, (len(f), *laplacian.shape))

    def precondition(self, r_hat, f, c, kx, ky, kept):
        """``a^-1/2 (-Lap)^-1 a^-1/2 r`` (products on the grid), the conjugate-gradient
        preconditioner of ``pdes.Darcy``: exact for a constant ``a``."""
        h, w = f.shape[-2:]
        root = 1.0 / jnp.sqrt(f[:, 1])
        laplacian = jnp.where(kept, kx**2 + ky**2, 1.0)
        x = jnp.fft.rfft2(root * jnp.fft.irfft2(r_hat, s=(h, w)))
        x = jnp.where(kept, x / laplacian, 0.0)
        return jnp.where(kept, jnp.fft.rfft2(root * jnp.fft.irfft2(x, s=(h, w))), 0.0)


@dataclass(frozen=True)
class PhysicsLoss:
    """Mean over the batch of the residual of ``operator`` (module docstring), plus the relative
    L2 error of the rows that carry a label. Hashable: the compiled step is shared by runs.

    Args:
        operator: the equation's operator.
        preconditioned: measure the residual in the units of ``u`` (default), else plainly.
    """

    operator: AbstractOperator
    preconditioned: bool = True
    uses_inputs: ClassVar[bool] = True  # fit calls it as loss(pred, u, f, c)

    def __hash__(self):
        return hash((type(self.operator), self.preconditioned))

    def __eq__(self, other):
        return (
            isinstance(other, PhysicsLoss)
            and type(self.operator) is type(other.operator)
            and self.preconditioned == other.preconditioned
        )

    @property
    def __name__(self) -> str:  # what config.json records as the run's loss
        kind = "" if self.preconditioned else "-plain"
        return f"physics{kind}({type(self.operator).__name__})"

    def check(self, fields: FieldSet) -> None:
        """Refuse data whose inputs this operator does not read, in one line."""
        if fields.input_names != self.operator.inputs:
            raise UserError(
                f"{fields.name or 'the data'} has inputs {'+'.join(fields.input_names)}, but the "
                f"physics loss of {type(self.operator).__name__} reads "
                f"{'+'.join(self.operator.inputs)}"
            )
        if fields.output_names != ("u",):
            raise UserError(
                f"{fields.name or 'the data'} has outputs {'+'.join(fields.output_names)}; the "
                "physics loss is for one solution channel u"
            )

    def residuals(
        self, pred: Float[Array, "b 1 h w"], f: Float[Array, "b c h w"], c: Float[Array, "b 6"]
    ) -> Float[Array, " b"]:
        """The residual of each prediction, relative to the source (module docstring)."""
        h, w = pred.shape[-2:]
        kx, ky = _wavenumbers(h, w)
        band = jnp.asarray(_band(h, w))
        weight = jnp.asarray(_parseval(w))
        u_hat = jnp.fft.rfft2(pred[:, 0])
        f_hat = jnp.fft.rfft2(f[:, 0])
        m, singular = self.operator.scale(f, c, kx, ky)
        kept = band & ~singular
        if self.preconditioned:

            def precondition(x):
                return self.operator.precondition(jnp.where(kept, x, 0.0), f, c, kx, ky, kept)
        else:  # one number per sample: the rms of M over the kept modes
            rms = jnp.sqrt(
                jnp.sum(jnp.where(kept, m, 0.0) ** 2, axis=(-2, -1), keepdims=True)
                / jnp.sum(kept, axis=(-2, -1), keepdims=True)
            )

            def precondition(x):
                return jnp.where(kept, x / rms, 0.0)

        lu = self.operator.apply(jnp.where(band, u_hat, 0.0), f, c, kx, ky, band)
        r = precondition(lu - f_hat)
        off = jnp.where(kept, 0.0, u_hat)
        reference = precondition(f_hat)

        def norm2(x):
            return jnp.sum(weight * (x.real**2 + x.imag**2), axis=(-2, -1))

        return jnp.sqrt((norm2(r) + norm2(off)) / norm2(reference))

    def __call__(self, pred, u, f, c) -> Float[Array, ""]:
        labelled = jnp.all(jnp.isfinite(u), axis=(1, 2, 3))
        stand_in = jnp.where(labelled[:, None, None, None], u, 1.0)  # finite, masked below
        supervised = jnp.where(labelled, relative_l2_per_sample(pred, stand_in), 0.0)
        return jnp.mean(self.residuals(pred, f, c) + supervised)


def unlabelled(fields: FieldSet, labels: int) -> FieldSet:
    """``fields`` in memory with the targets of all but the first ``labels`` samples set to NaN
    (what :class:`PhysicsLoss` reads as unlabelled; nothing else trains on such a set)."""
    if not 0 <= labels <= len(fields):
        raise UserError(f"labels must be between 0 and {len(fields)}, got {labels}")
    f, c, u = fields.take(np.arange(len(fields)))
    u = u.copy()
    u[labels:] = np.nan
    return FieldSet(
        f,
        fields.coefficients,
        u,
        name=f"{fields.name} ({labels} labelled)",
        input_names=fields.input_names,
        output_names=fields.output_names,
    )


@eqx.filter_jit
def _residuals(loss: PhysicsLoss, model, f, c):
    return loss.residuals(jax.vmap(model)(f, c), f, c)


def physics_residuals(
    loss: PhysicsLoss, model, fields: FieldSet, batch_size: int = 32
) -> np.ndarray:
    """The residual of ``model``'s prediction of each sample of ``fields`` (labels unused)."""
    loss.check(fields)
    n = len(fields)
    size = min(batch_size, n)
    out = np.empty(n)
    for lo in range(0, n, size):
        index = np.arange(lo, min(lo + size, n))
        f, c, _ = fields.take(np.resize(index, size))  # repeat samples to keep the shape
        out[index] = np.asarray(_residuals(loss, model, f, c))[: len(index)]
    return out


OPERATORS: dict[str, Callable[[], AbstractOperator]] = {
    "poisson": ConstantCoefficients,
    "advdiff": ConstantCoefficients,
    "helmholtz": ConstantCoefficients,
    "darcy": VariableDiffusion,
}


def physics_loss(system: str, *, preconditioned: bool = True) -> PhysicsLoss:
    """The physics loss of a system scifm generates (config boundary); others are refused."""
    if system == "pdebench-darcy":
        raise UserError(
            "PDEBench's Darcy flow has a Dirichlet boundary (u = 0 on the square's edge); the "
            "physics loss is periodic, for scifm's systems: " + ", ".join(OPERATORS)
        )
    if system not in OPERATORS:
        raise UserError(
            f"no physics loss for system {system!r}; scifm knows the equations of "
            + ", ".join(OPERATORS)
        )
    return PhysicsLoss(OPERATORS[system](), preconditioned=preconditioned)
