"""High-dimensional PDE problems with exact solutions (STDE / SDGD / HTE benchmarks)."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from scifm._checks import UserError

from .. import operators as ops
from ._solutions import ANNULUS, BALL, TermSumSolution, three_body, two_body


def sample_shell(key: Array, n: int, dim: int, r_min: float, r_max: float, dtype=None) -> Array:
    """``n`` points ``r * g / |g|``, ``g ~ N(0, I_d)``, radius ``r ~ U(r_min, r_max)``.

    This is the STDE/SDGD sampling (not uniform in volume: in high ``d`` almost all volume
    is near the boundary, so uniform points would never probe the interior).
    """
    dtype = dtype or jnp.zeros(()).dtype
    kg, kr = jax.random.split(key)
    g = jax.random.normal(kg, (n, dim), dtype=dtype)
    r = jax.random.uniform(kr, (n, 1), dtype=dtype, minval=r_min, maxval=r_max)
    return r * g / jnp.linalg.norm(g, axis=-1, keepdims=True)


class AbstractProblem(eqx.Module):
    """``L[u](x) = g(x)`` in a ball or annulus, with a known solution and ``u = 0`` on the
    boundary (imposed exactly by the ansatz ``u = p(|x|^2) N(x)``, see
    :class:`HardConstraint`).

    Implement :meth:`operator` (``L`` applied to the network, with a derivative estimator)
    and :meth:`forcing` (``L`` applied to the exact solution, in closed form); the PINN
    residual is ``operator - forcing``. :meth:`boundary_loss` adds boundary conditions the
    ansatz does not impose (0 by default). ``gradient_weight > 0`` turns on the gPINN term
    ``gradient_weight * |grad_x residual|^2``.
    """

    solution: TermSumSolution
    r_min: float = eqx.field(static=True)
    r_max: float = eqx.field(static=True)
    gradient_weight: float = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return self.solution.dim

    @abc.abstractmethod
    def operator(self, u: Callable, x: Array, *, estimator: ops.AbstractEstimator, key: Array):
        """``L[u](x)`` for the network ``u`` (an unbiased estimate where ``L`` is linear)."""

    @abc.abstractmethod
    def forcing(self, x: Array) -> Array:
        """``g(x) = L[u*](x)`` for the exact solution ``u*``, ``O(d)`` per point."""

    def exact(self, x: Array) -> Array:
        return self.solution(x)

    def boundary_factor(self, rho: Array) -> Array:
        """The polynomial in ``rho = |x|^2`` that vanishes on the boundary."""
        return self.solution.radial_factor(rho)

    @property
    def radial(self) -> tuple[float, ...]:
        return self.solution.radial

    def sample(self, key: Array, n: int) -> Array:
        return sample_shell(key, n, self.dim, self.r_min, self.r_max, self.solution.coeffs.dtype)

    def boundary_loss(self, u: Callable, key: Array, n: int) -> Array:
        return jnp.zeros((), self.solution.coeffs.dtype)


class Semilinear(AbstractProblem):
    """``Lap u + f(u) = g`` on the unit ball: Poisson (``f = 0``), Allen-Cahn
    (``f(u) = u - u^3``), Sine-Gordon (``f(u) = sin u``), or any pointwise ``f``.

    Adding a PDE of this form is one line::

        Semilinear(two_body(d, key=k), nonlinearity=lambda u: jnp.exp(-u))
    """

    nonlinearity: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, solution, nonlinearity=None, *, gradient_weight: float = 0.0):
        self.solution = solution
        self.nonlinearity = nonlinearity if nonlinearity is not None else jnp.zeros_like
        self.r_min, self.r_max = 0.0, 1.0
        self.gradient_weight = float(gradient_weight)

    def operator(self, u, x, *, estimator, key):
        value, lap = ops.value_and_laplacian(u, x, estimator=estimator, key=key)
        return lap + self.nonlinearity(value)

    def forcing(self, x):
        u, lap = self.solution.value_and_laplacian(x)
        return lap + self.nonlinearity(u)


class Biharmonic(AbstractProblem):
    """``Lap^2 u = g`` on the annulus ``1 <= |x| <= 2`` (HTE benchmark), clamped:
    ``u = 0`` by the ansatz ``(1 - |x|^2)(4 - |x|^2) N(x)`` and the normal derivative
    ``d_n u = d_n u*`` on both spheres by a penalty (mean square over ``n`` boundary
    points per step, half on each sphere). The normal is ``x/|x|``, so through the network's
    first layer its tangent is ``W x``, which the primal already holds
    (:func:`~scifm.operators.radial_derivative`): no second ``(width, d)`` product.
    """

    def __init__(self, solution, *, gradient_weight: float = 0.0):
        self.solution = solution
        self.r_min, self.r_max = 1.0, 2.0
        self.gradient_weight = float(gradient_weight)

    def operator(self, u, x, *, estimator, key):
        return ops.biharmonic(u, x, estimator=estimator, key=key)

    def forcing(self, x):
        return self.solution.biharmonic(x)

    def boundary_loss(self, u, key, n):
        x = sample_shell(key, n, self.dim, 1.0, 1.0, self.solution.coeffs.dtype)
        x = x * jnp.where(jnp.arange(n) % 2 == 0, 1.0, 2.0)[:, None].astype(x.dtype)

        err = jax.vmap(
            lambda y: ops.radial_derivative(u, y) - ops.radial_derivative(self.solution, y)
        )(x)
        return jnp.mean(err**2)


def _allen_cahn(u):
    return u - u**3


NONLINEARITIES = {"poisson": None, "allen-cahn": _allen_cahn, "sine-gordon": jnp.sin}


def make_problem(name: str, dim: int, *, key: Array, dtype=None) -> AbstractProblem:
    """Problem by CLI name: ``{poisson,allen-cahn,sine-gordon}-{2body,3body}[-gpinn]`` or
    ``biharmonic-3body[-gpinn]``; gPINN variants use gradient weight 0.1."""
    valid = problem_names()
    if name not in valid:
        raise UserError(f"unknown PDE {name!r}; valid: {', '.join(valid)}")
    base, _, suffix = name.partition("-gpinn")
    weight = 0.1 if name.endswith("-gpinn") else 0.0
    pde, body = base.rsplit("-", 1)
    if pde == "biharmonic":
        return Biharmonic(
            three_body(dim, key=key, radial=ANNULUS, dtype=dtype), gradient_weight=weight
        )
    make = two_body if body == "2body" else three_body
    return Semilinear(
        make(dim, key=key, radial=BALL, dtype=dtype), NONLINEARITIES[pde], gradient_weight=weight
    )


def problem_names() -> list[str]:
    names = [f"{p}-{b}" for p in NONLINEARITIES for b in ("2body", "3body")] + ["biharmonic-3body"]
    return names + [n + "-gpinn" for n in names]
