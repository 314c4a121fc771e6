"""Direct minimisation of the free energy over orthonormal orbitals and occupations.

The method of Li, Lin et al., "Diagonalization without diagonalization" (arXiv 2411.05033):
free real parameters ``W`` (one complex matrix per k-point) and ``U`` give

- orbitals ``C_k = Q(W_k)``, the Q factor of a reduced QR: orthonormal by construction;
- occupations ``f = diag(V V^T)``, ``V = Q(U)`` with ``U`` of shape
  ``(nk * bands, nk * N / 2)``, so that ``0 <= f <= 1`` and ``sum f = nk N / 2`` exactly
  (the k-points must have equal weights: use an unreduced mesh);

and the Mermin free energy ``A = E - T S`` is minimised by an Optax optimiser. At a stationary
point the occupation and Kohn-Sham matrices commute, so H becomes diagonal in the orbitals
and ``f`` Fermi-Dirac in its eigenvalues ("self-diagonalisation"); both are measured as the
run goes (``max_offdiagonal``, ``max_occupation_error``).

Beyond the paper: any Optax optimiser (``optax.lbfgs()`` converges in a few hundred steps where
Adam needs thousands; see BENCHMARKS.md), an optional geometric temperature annealing, and
runs resumable from their last saved parameters.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scifm._checks import UserError
from scifm._progress import NoProgress
from scifm.dft._hamiltonian import Hamiltonian
from scifm.dft._occupations import fermi_level
from scifm.dft._result import GroundState, self_diagonalisation, subspace_matrices
from scifm.dft._sharding import per_kpoint, put_along_k


@dataclasses.dataclass(frozen=True)
class Annealing:
    """Temperature from ``start`` (Ha) down geometrically to the target over ``steps`` steps."""

    start: float
    steps: int

    def __call__(self, step: int, target: float) -> float:
        if target <= 0 or step >= self.steps or self.start <= target:
            return target
        return self.start * (target / self.start) ** (step / self.steps)


_LBFGS = optax.lbfgs()  # one object, so that jit compiles the step once per shape


def _occupation_count(h: Hamiltonian) -> int:
    weights = np.asarray(h.basis.kpoints.weights)
    if not np.allclose(weights, weights[0]):
        raise UserError(
            "direct minimisation needs equal k-point weights: use an unreduced k-mesh"
        )
    total = h.electrons * len(weights) / 2
    if abs(total - round(total)) > 1e-9:
        raise UserError(
            f"{h.electrons} electrons on {len(weights)} k-points do not fill whole orbitals; "
            "use an even number of k-points"
        )
    return int(round(total))


def kinetic_scale(h: Hamiltonian):
    """The preconditioning change of variables ``W = s W'``, ``s = (1 + |k+G|^2 / 2)^(-1/2)``:
    a gradient step in ``W'`` is a step in ``W`` scaled by ``s^2``, damping the stiff
    high-kinetic-energy directions as a kinetic preconditioner does (Teter et al. 1989)."""
    return jnp.sqrt(h.damping())


def initial_parameters(h: Hamiltonian, bands: int, *, key, precondition: bool = False) -> dict:
    nk, npw = h.basis.mask.shape
    k1, k2, k3 = jax.random.split(key, 3)
    # a smooth start, the same orbitals W = s W' with or without preconditioning (damping / s = s)
    damp = kinetic_scale(h) if precondition else h.damping()
    occupied = _occupation_count(h)
    return {
        "re": put_along_k(jax.random.normal(k1, (nk, npw, bands)) * damp, h.sharding),
        "im": put_along_k(jax.random.normal(k2, (nk, npw, bands)) * damp, h.sharding),
        "occ": jax.random.normal(k3, (nk * bands, occupied)),
    }


def orbitals_and_occupations(h: Hamiltonian, params: dict, precondition: bool = False):
    mask = jnp.asarray(h.basis.mask)[..., None]
    w = (params["re"] + 1j * params["im"]) * (kinetic_scale(h) if precondition else mask)
    coeffs = per_kpoint(lambda a: jnp.linalg.qr(a).Q, h.sharding)(w) * mask
    v = jnp.linalg.qr(params["occ"]).Q
    nk, _, bands = coeffs.shape
    return coeffs, jnp.sum(v**2, axis=1).reshape(nk, bands)


def _objective(params, h, positions, temperature, precondition):
    coeffs, occupations = orbitals_and_occupations(h, params, precondition)
    return h.free_energy(coeffs, occupations, positions, temperature)


@eqx.filter_jit
def _step(params, state, h, positions, temperature, optimizer, precondition):
    def fn(p):
        return _objective(p, h, positions, temperature, precondition)

    value, grad = jax.value_and_grad(fn)(params)
    updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=fn)
    norm = optax.tree.norm(grad)
    return optax.apply_updates(params, updates), state, value, norm


def direct_minimise(
    h: Hamiltonian,
    bands: int,
    *,
    key,
    temperature: float = 0.0,
    optimizer: optax.GradientTransformation | None = None,
    annealing: Annealing | None = None,
    precondition: bool = False,
    max_steps: int = 5000,
    tolerance: float = 1e-9,
    gradient_tolerance: float = 1e-5,
    window: int = 20,
    log_every: int = 10,
    run=None,
    checkpoint_every: int = 200,
    progress=NoProgress(),
) -> GroundState:
    """Minimise the free energy directly (see the module docstring).

    Args:
        bands: orbitals per k-point.
        key: random initial parameters.
        temperature: smearing kT (Ha); 0 for an insulator.
        optimizer: Optax optimiser (default ``optax.lbfgs()``; the paper's is
            ``optax.adam(1e-2, b2=0.99)``).
        annealing: optional temperature schedule towards ``temperature``.
        precondition: optimise ``W' = W / s`` (:func:`kinetic_scale`) instead of ``W``.
        tolerance, window: converged when the free energy changed by less than ``tolerance``
            (Ha) over the last ``window`` steps and the gradient norm is below
            ``gradient_tolerance``.
        log_every: steps between rows of self-diagonalisation measures in ``history``
            (and in ``run``'s metrics).
        run: a :class:`scifm._runs.RunDirectory`: parameters and optimiser state are saved
            every ``checkpoint_every`` steps, and a rerun resumes from the last save.
    """
    optimizer = optimizer or _LBFGS
    if not isinstance(optimizer, optax.GradientTransformationExtraArgs):
        optimizer = optax.with_extra_args_support(optimizer)
    positions = jnp.asarray(h.basis.crystal.positions)
    params = initial_parameters(h, bands, key=key, precondition=precondition)
    # strong dtypes, as the state after an update has them (else the step compiles twice)
    state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype) if isinstance(x, jax.Array) else x, optimizer.init(params))
    start, rows, values = 0, [], []
    if run is not None:
        saved = run.load_state((params, state))
        if saved is not None:
            (params, state), counters = saved
            start, values = counters["step"], counters["values"]
            rows = run.keep_metrics(lambda r: r["step"] <= start)
    progress.start(max_steps, start)
    converged = False
    step = start
    while step < max_steps:
        t = annealing(step, temperature) if annealing else temperature
        params, state, value, norm = _step(params, state, h, positions, jnp.asarray(t), optimizer, precondition)
        step += 1
        value, norm = float(value), float(norm)
        if not math.isfinite(value):
            raise UserError(f"the free energy became {value} at step {step}; lower the learning rate")
        values = (values + [value])[-(window + 1) :]
        progress.step(value, 1)
        annealed = t == temperature
        if step % log_every == 0 or step == max_steps:
            rows.append(_row(h, params, positions, t, step, value, norm, precondition))
            if run is not None:
                run.log(rows[-1])
        if (
            annealed
            and len(values) > window
            and max(values) - min(values) < tolerance
            and norm < gradient_tolerance
        ):
            converged = True
            break
        if run is not None and step % checkpoint_every == 0:
            run.save_state((params, state), {"step": step, "values": values}, step=step)
    progress.close()
    coeffs, occupations, terms = _final(h, params, positions, jnp.asarray(temperature), precondition)
    return _ground_state(h, coeffs, occupations, positions, temperature, terms, step, converged, rows)


@eqx.filter_jit
def _final(h, params, positions, temperature, precondition):
    coeffs, occupations = orbitals_and_occupations(h, params, precondition)
    return coeffs, occupations, h.energy_terms(coeffs, occupations, positions, temperature)


def _row(h, params, positions, temperature, step, value, norm, precondition) -> dict:
    coeffs, occupations = eqx.filter_jit(orbitals_and_occupations)(h, params, precondition)
    measures = self_diagonalisation(h, coeffs, occupations, positions, temperature)
    return {"step": step, "free_energy": value, "gradient_norm": norm, "temperature": temperature, **measures}


def _ground_state(h, coeffs, occupations, positions, temperature, terms, steps, converged, rows):
    sub = eqx.filter_jit(subspace_matrices)(h, coeffs, occupations, positions)
    # Rayleigh-Ritz in the orbitals' span: equally occupied orbitals may be any rotation of
    # the eigenvectors (the energy does not change), so the diagonal of H is not enough
    # at T > 0 the orbitals are self-diagonalised: keep their order, matching the occupations
    if temperature > 0:
        eigenvalues = np.real(np.asarray(jnp.diagonal(sub, axis1=1, axis2=2)))
    else:
        eigenvalues = np.linalg.eigvalsh(np.asarray(sub))
    if temperature > 0:
        mu = float(fermi_level(jnp.asarray(eigenvalues), h.weights, h.electrons, temperature))
    else:
        mu = float(np.max(eigenvalues[:, : h.electrons // 2]))
    return GroundState(
        hamiltonian=h,
        positions=np.asarray(positions),
        coeffs=coeffs,
        occupations=occupations,
        eigenvalues=eigenvalues,
        energies={k: float(v) for k, v in terms.items()},
        fermi_level=mu,
        temperature=temperature,
        steps=steps,
        converged=converged,
        history=[r["free_energy"] for r in rows],
        diagonalisation=rows,
    )
