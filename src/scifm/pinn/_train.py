"""PINN training: pure jitted steps, a thin loop with a run directory, checkpoints and resume.

A PINN run keeps the run-directory layout every pillar shares (:mod:`scifm._runs`):
``config.json``, ``metrics.jsonl`` (every 10th step and every evaluation), the resumable
``state.json`` + ``state-<step>.eqx``, the final model ``checkpoint.eqx`` + ``model.json``, and
``result.json`` written last.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from scifm._checks import check_count, check_non_negative, check_positive

from .. import operators as ops
from .._progress import NoProgress, RunProgress
from .._runs import DivergenceError, RunDirectory
from ..models import MLP
from ._model import HardConstraint
from ._problems import AbstractProblem


def make_model(problem: AbstractProblem, *, width: int = 128, depth: int = 4, key: Array):
    """``HardConstraint(MLP)`` for ``problem``: zero on its boundary by construction."""
    dtype = problem.solution.coeffs.dtype
    return HardConstraint(_mlp(problem.dim, width, depth, key, dtype), problem.radial)


@eqx.filter_jit
def _mlp(dim: int, width: int, depth: int, key: Array, dtype) -> MLP:
    # one compiled call (eagerly, each layer's initialiser compiles for its shape)
    return MLP(dim, width, depth, key=key, dtype=dtype)


def residuals(model, problem: AbstractProblem, estimator, x: Array, key: Array) -> Array:
    """PINN residuals ``L[u](x_n) - g(x_n)``, one key per point (independent samples)."""
    keys = jax.random.split(key, x.shape[0])

    def r(y, k):
        return problem.operator(model, y, estimator=estimator, key=k) - problem.forcing(y)

    return jax.vmap(r)(x, keys)


def pinn_loss(model, problem: AbstractProblem, estimator, key: Array, batch_size: int) -> Array:
    """``mean r^2`` over ``batch_size`` fresh interior points (+ gPINN + boundary terms).

    With an unbiased estimate ``r_hat``, ``E[r_hat^2] = r^2 + Var(r_hat)``: the loss is
    biased upwards by the estimator's variance (as in the STDE/SDGD papers); the minimiser of
    the exact loss still has zero residual. gPINN: ``+ w mean |grad_x r_hat|^2`` (the
    random directions are held fixed while differentiating in ``x``).
    """
    kx, kr, kb = jax.random.split(key, 3)
    x = problem.sample(kx, batch_size)
    loss = jnp.mean(residuals(model, problem, estimator, x, kr) ** 2)
    if problem.gradient_weight:
        keys = jax.random.split(kr, batch_size)

        def r(y, k):
            return problem.operator(model, y, estimator=estimator, key=k) - problem.forcing(y)

        g = jax.vmap(jax.grad(r))(x, keys)
        loss = loss + problem.gradient_weight * jnp.mean(jnp.sum(g**2, axis=-1))
    return loss + problem.boundary_loss(model, kb, batch_size)


def make_optimizer(steps: int, lr: float = 1e-3) -> optax.GradientTransformation:
    """Adam, learning rate decayed linearly from ``lr`` to 0 over ``steps``."""
    return optax.adam(optax.linear_schedule(lr, 0.0, max(steps, 1)))


def make_step(problem, estimator, optimizer, batch_size: int) -> Callable:
    """``step(model, opt_state, key) -> (model, opt_state, loss)``, jitted, pure."""

    @eqx.filter_jit
    def step(model, opt_state, key):
        loss, grads = eqx.filter_value_and_grad(pinn_loss)(
            model, problem, estimator, key, batch_size
        )
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


@eqx.filter_jit
def _squared_errors(model, problem: AbstractProblem, key: Array, m: int):
    # module-level: compiled once per (model, problem, m) shape, not at every evaluation
    x = problem.sample(key, m)
    u, ref = jax.vmap(model)(x), jax.vmap(problem.exact)(x)
    return jnp.sum((u - ref) ** 2), jnp.sum(ref**2)


def relative_l2(model, problem: AbstractProblem, *, key: Array, n: int = 20_000) -> float:
    """``|u - u*|_2 / |u*|_2`` on ``n`` test points, drawn and evaluated in batches so that
    at most ~2e7 coordinates are in memory (never ``n x d`` at once)."""
    batch = max(1, min(n, 20_000_000 // problem.dim))
    num = den = 0.0
    evaluated = batch_index = 0
    while evaluated < n:
        m = min(batch, n - evaluated)
        e, r = _squared_errors(model, problem, jax.random.fold_in(key, batch_index), m)
        num, den = num + float(e), den + float(r)
        evaluated, batch_index = evaluated + m, batch_index + 1
    return math.sqrt(num / den)


def fit(
    problem: AbstractProblem,
    estimator: ops.AbstractEstimator,
    *,
    steps: int,
    width: int = 128,
    depth: int = 4,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    n_test: int = 20_000,
    eval_every: int = 1000,
    checkpoint_every: int = 500,
    checkpoint_seconds: float = 60.0,
    run_dir: str | os.PathLike | None = None,
    config: dict | None = None,
    progress: RunProgress = NoProgress(),
) -> tuple[eqx.Module, dict]:
    """Train a hard-constrained PINN on ``problem`` with ``estimator``; return (model, result).

    Adam with the learning rate decayed linearly from ``lr`` to 0 over ``steps``; step ``n``
    uses the key ``fold_in(key(seed), n)``, so a resumed run draws the same points and ends
    as an uninterrupted one would. The relative L2 error on ``n_test`` points is evaluated
    every ``eval_every`` steps (0: never before) and after the last.

    With ``run_dir`` (see the module docstring): ``config`` plus the arguments and the
    precision make ``config.json``; the resumable state is saved every ``checkpoint_every``
    steps, every ``checkpoint_seconds`` seconds and at the end, so a kill loses at most that
    much. An unfinished run of the same configuration there is resumed; another
    configuration, a finished run or a foreign directory is refused
    (:class:`scifm._runs.RunError`, :class:`scifm._runs.RunFinished`) before anything runs.

    Raises:
        UserError: bad arguments.
        DivergenceError: the loss became NaN or infinite.
    """
    for name, value in (
        ("steps", steps),
        ("width", width),
        ("depth", depth),
        ("batch_size", batch_size),
        ("n_test", n_test),
        ("checkpoint_every", checkpoint_every),
    ):
        check_count(name, value)
    check_count("eval_every", eval_every, minimum=0)  # 0: only after the last step
    check_positive("lr", lr)
    check_non_negative("checkpoint_seconds", checkpoint_seconds)  # 0: after every step
    key = jax.random.key(seed)
    kmodel, ktrain, ktest = jax.random.split(key, 3)
    model = make_model(problem, width=width, depth=depth, key=kmodel)
    optimizer = make_optimizer(steps, lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    step_fn = make_step(problem, estimator, optimizer, batch_size)

    @eqx.filter_jit
    def step_at(model, opt_state, n):
        # the step's key derived inside the compiled call: an eager fold_in per step cost
        # ~0.7 ms of dispatch, 7% of a d = 1000 iteration
        return step_fn(model, opt_state, jax.random.fold_in(ktrain, n))
    dtype = str(problem.solution.coeffs.dtype)
    settings = dict(
        config or {},
        steps=steps,
        width=width,
        depth=depth,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        n_test=n_test,
        eval_every=eval_every,
        estimator=repr(estimator),
        dtype=dtype,
    )
    # trace the step once before touching the run directory: errors that show only when the
    # estimator meets the problem (more sampled dimensions than d, ...) are raised first
    eqx.filter_eval_shape(step_fn, model, opt_state, ktrain)
    run = RunDirectory.open(run_dir, settings) if run_dir is not None else None
    start, elapsed0, history = 0, 0.0, []
    if run is not None:
        saved_state = run.load_state((model, opt_state))
        if saved_state is not None:
            (model, opt_state), counters = saved_state
            start, elapsed0 = counters["step"], counters["elapsed_s"]
        # rows logged after the saved state are redone; a run restarted from 0 keeps none
        history = run.keep_metrics(lambda r: r["step"] <= start)

    t0 = time.perf_counter() - elapsed0
    saved = time.perf_counter()
    progress.start(steps, start)
    try:
        for n in range(start, steps):
            model, opt_state, loss = step_at(model, opt_state, jnp.uint32(n))
            loss = float(loss)
            if not math.isfinite(loss):
                kept = f" (it keeps its state at step {start})" if run is not None and start else ""
                raise DivergenceError(
                    f"the training loss became {loss} at step {n + 1}{kept}: lower the learning "
                    f"rate (now {lr:g})"
                )
            row = {"step": n + 1, "loss": loss, "time_s": time.perf_counter() - t0}
            last = n + 1 == steps
            if (eval_every and (n + 1) % eval_every == 0) or last:
                row["rel_l2"] = relative_l2(model, problem, key=ktest, n=n_test)
            if (n + 1) % 10 == 0 or "rel_l2" in row:
                history.append(row)
                if run is not None:
                    run.log(row)
            if "rel_l2" in row:
                progress.evaluated("rel_l2", row["rel_l2"], f"step {n + 1}")
            due = (
                n + 1
            ) % checkpoint_every == 0 or time.perf_counter() - saved >= checkpoint_seconds
            if run is not None and (due or last):
                counters = {"step": n + 1, "elapsed_s": time.perf_counter() - t0}
                run.save_state((model, opt_state), counters, step=n + 1)
                start, saved = n + 1, time.perf_counter()
            progress.step(loss, 1)
    finally:
        progress.close()
    evaluated = [r for r in history if "rel_l2" in r and r["step"] == steps]
    rel = evaluated[-1]["rel_l2"] if evaluated else relative_l2(model, problem, key=ktest, n=n_test)
    result = {
        "rel_l2": rel,
        "steps": steps,
        "train_time_s": time.perf_counter() - t0,
        "final_loss": history[-1]["loss"] if history else None,
    }
    if run is not None:
        description = {"kind": "pinn-mlp", "dim": problem.dim, "width": width, "depth": depth}
        run.save_model(model, {**description, "dtype": dtype})
        run.write_result(result)
    return model, result
