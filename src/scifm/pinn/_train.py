"""PINN training: pure jitted steps, a thin loop with a run directory, checkpoints and resume."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from .. import operators as ops
from ..models import MLP
from ._model import HardConstraint
from ._problems import AbstractProblem


def make_model(problem: AbstractProblem, *, width: int = 128, depth: int = 4, key: Array):
    """``HardConstraint(MLP)`` for ``problem``: zero on its boundary by construction."""
    dtype = problem.solution.coeffs.dtype
    return HardConstraint(MLP(problem.dim, width, depth, key=key, dtype=dtype), problem.radial)


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


def make_plain_step(problem, optimizer, batch_size: int) -> Callable:
    """The floor: same model, same batch sampling, loss ``mean (u(x) - u*(x))^2`` with no
    derivative term (one forward and one backward pass)."""

    @eqx.filter_jit
    def step(model, opt_state, key):
        def loss_fn(m):
            x = problem.sample(key, batch_size)
            return jnp.mean((jax.vmap(m)(x) - jax.vmap(problem.exact)(x)) ** 2)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


def relative_l2(model, problem: AbstractProblem, *, key: Array, n: int = 20_000) -> float:
    """``|u - u*|_2 / |u*|_2`` on ``n`` test points, drawn and evaluated in batches so that
    at most ~2e7 coordinates are in memory (never ``n x d`` at once)."""
    batch = max(1, min(n, 20_000_000 // problem.dim))

    @eqx.filter_jit
    def partial(model, k, m):
        x = problem.sample(k, m)
        u, ref = jax.vmap(model)(x), jax.vmap(problem.exact)(x)
        return jnp.sum((u - ref) ** 2), jnp.sum(ref**2)

    num = den = 0.0
    done = b = 0
    while done < n:
        m = min(batch, n - done)
        e, r = partial(model, jax.random.fold_in(key, b), m)
        num, den = num + float(e), den + float(r)
        done, b = done + m, b + 1
    return math.sqrt(num / den)


def _atomic_write_bytes(path: Path, write: Callable) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, lambda f: f.write(text.encode()))


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


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
    run_dir: str | os.PathLike | None = None,
    config: dict | None = None,
    callback: Callable[[int, dict], None] | None = None,
) -> tuple[eqx.Module, dict]:
    """Train a hard-constrained PINN on ``problem`` with ``estimator``; return (model, result).

    With ``run_dir``: writes ``config.json`` (``config`` plus the arguments),
    ``metrics.jsonl`` (one JSON line per logged step: step, loss, elapsed seconds, and
    ``rel_l2`` at evaluations), ``checkpoint.eqx`` (model, optimiser state, step; written
    atomically every ``checkpoint_every`` steps) and ``final.json``. If the directory holds a
    checkpoint of the same configuration, training resumes from it (losing at most
    ``checkpoint_every`` steps); a different configuration raises ``ValueError``. Step
    ``n`` uses the key ``fold_in(key(seed), n)``, so a resumed run draws the same points.

    ``callback(step, metrics)`` is called after every step (progress bars live in the CLI).
    Raises :class:`DivergenceError` if the loss is not finite.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    key = jax.random.key(seed)
    kmodel, ktrain, ktest = jax.random.split(key, 3)
    model = make_model(problem, width=width, depth=depth, key=kmodel)
    optimizer = make_optimizer(steps, lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    step_fn = make_step(problem, estimator, optimizer, batch_size)
    settings = dict(
        config or {},
        steps=steps,
        width=width,
        depth=depth,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        n_test=n_test,
        estimator=repr(estimator),
    )
    # trace the step once before touching the run directory: errors that show only when the
    # estimator meets the problem (more sampled dimensions than d, ...) leave nothing behind
    eqx.filter_eval_shape(step_fn, model, opt_state, ktrain)
    start, elapsed0 = 0, 0.0
    run = Path(run_dir) if run_dir is not None else None
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
        cfg_path, ckpt = run / "config.json", run / "checkpoint.eqx"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            if {k: v for k, v in old.items() if k != "scifm_version"} != json.loads(
                json.dumps({k: v for k, v in settings.items() if k != "scifm_version"})
            ):
                raise ValueError(
                    f"{run} holds a run with a different configuration; choose another --out"
                )
        else:
            _atomic_write_text(cfg_path, json.dumps(settings, indent=2) + "\n")
        if ckpt.exists():
            like = (
                model,
                opt_state,
                jnp.zeros((), jnp.int64 if jax.config.x64_enabled else jnp.int32),
                jnp.zeros(()),
            )
            model, opt_state, s, el = eqx.tree_deserialise_leaves(ckpt, like)
            start, elapsed0 = int(s), float(el)
            _truncate_metrics(run / "metrics.jsonl", start)

    def save(step: int, elapsed: float):
        if run is None:
            return
        leaves = (model, opt_state, jnp.asarray(step), jnp.asarray(elapsed))
        _atomic_write_bytes(run / "checkpoint.eqx", lambda f: eqx.tree_serialise_leaves(f, leaves))

    metrics_file = open(run / "metrics.jsonl", "a") if run is not None else None  # noqa: SIM115
    history: list[dict] = []
    t0 = time.perf_counter() - elapsed0
    rel = None
    try:
        for n in range(start, steps):
            model, opt_state, loss = step_fn(model, opt_state, jax.random.fold_in(ktrain, n))
            loss = float(loss)
            if not math.isfinite(loss):
                raise DivergenceError(f"training loss is {loss} at step {n + 1}")
            row = {"step": n + 1, "loss": loss, "time_s": time.perf_counter() - t0}
            last = n + 1 == steps
            if eval_every and ((n + 1) % eval_every == 0 or last):
                row["rel_l2"] = rel = relative_l2(model, problem, key=ktest, n=n_test)
            if (n + 1) % 10 == 0 or "rel_l2" in row:
                history.append(row)
                if metrics_file is not None:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
            if run is not None and ((n + 1) % checkpoint_every == 0 or last):
                save(n + 1, time.perf_counter() - t0)
            if callback is not None:
                callback(n + 1, row)
    finally:
        if metrics_file is not None:
            metrics_file.close()
    if rel is None:
        rel = relative_l2(model, problem, key=ktest, n=n_test)
    result = {
        "rel_l2": rel,
        "steps": steps,
        "train_time_s": time.perf_counter() - t0,
        "final_loss": history[-1]["loss"] if history else None,
    }
    if run is not None:
        _atomic_write_text(run / "final.json", json.dumps(result, indent=2) + "\n")
        from ._plot import plot_metrics

        plot_metrics(run / "metrics.jsonl", run / "loss.png")
    return model, result


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    keep = [r for r in rows if json.loads(r)["step"] <= step]
    _atomic_write_text(path, "".join(r + "\n" for r in keep))
