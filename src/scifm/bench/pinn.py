"""`scifm bench pinn`: training-step time and memory of each derivative estimator against d.

Every configuration (dimension, estimator, operator) runs in its own subprocess, so that
its peak resident memory (``VmHWM``, see :func:`~scifm.bench.peak_rss_mib`) is its own;
XLA's memory of each compiled step (:func:`~scifm.bench.xla_memory_bytes`) is reported
beside it. In each subprocess, on one fixed batch (points, forcing
and exact values precomputed, so data generation is timed separately):

- ``plain``: the floor, a training step of the same model on the same batch with no
  derivative term (loss ``mean (u(x) - u*(x))^2``, Adam update);
- ``step``: the PINN training step with the estimator (loss ``mean (L[u](x) - g(x))^2``);
- ``iteration``: the full training iteration as ``scifm pinn`` runs it (fresh points, closed
  form forcing, estimator step), whose rate is the ``it/s`` column.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from scifm._checks import UserError

from .._checks import check_count, check_counts, check_nonempty
from . import _report as fmt
from ._measure import machine, peak_rss_mib, xla_memory_bytes

if TYPE_CHECKING:
    from scifm.operators import AbstractEstimator

# Configurations predicted not to fit (dense d-vectors per point: memory ~ points x
# directions x d x nesting depth x 4 bytes) or to take minutes per step (Taylor-mode jets)
# are skipped with a note instead of being run; each estimator states these costs.
MAX_DENSE_FLOATS = 2.5e9
MAX_JETS = 2e5
OPERATOR_ORDERS = {"laplacian": 2, "biharmonic": 4}
# The PDE each operator is timed on, and the least d its exact solution is defined for (a
# k-body solution sums terms of k consecutive coordinates).
OPERATOR_PDES = {"laplacian": "sine-gordon-2body", "biharmonic": "biharmonic-3body"}
MIN_DIMS = {"laplacian": 2, "biharmonic": 3}


def skip_reason(estimator: AbstractEstimator, op: str, d: int, batch: int) -> str | None:
    """Why (``estimator``, op, d) is not run on a 2-core 24 GiB CPU, or None.

    Asks the estimator what it can run and what it costs
    (:meth:`~scifm.operators.AbstractEstimator.check_dimension`,
    :meth:`~scifm.operators.AbstractEstimator.jets`,
    :meth:`~scifm.operators.AbstractEstimator.dense_vectors`).
    """
    order = OPERATOR_ORDERS[op]
    try:
        estimator.check_dimension(d)
    except ValueError as e:
        return str(e)
    jets = batch * (estimator.jets(order, d) or 0)
    if jets > MAX_JETS:
        return f"{type(estimator).__name__} needs {jets:.0e} jets per step"
    floats = batch * (estimator.dense_vectors(order) or 0) * d
    if floats > MAX_DENSE_FLOATS:
        return f"~{floats * 4 / 2**30:.0f} GiB of dense d-vectors per step"
    return None


def _median_time(fn, min_repeats: int, min_seconds: float) -> tuple[float, int]:
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn(len(times))
        times.append(time.perf_counter() - t)
        if len(times) >= 200:
            break
    times.sort()
    return times[len(times) // 2], len(times)


def _xla_bytes(raw_step, model, opt_state, key) -> int | None:
    """:func:`~scifm.bench.xla_memory_bytes` of the step compiled on (params, state, key)."""
    import equinox as eqx
    import jax

    params, static = eqx.partition(model, eqx.is_array)

    def f(p, o, k):
        m, o, loss = raw_step(eqx.combine(p, static), o, k)
        return eqx.filter(m, eqx.is_array), o, loss

    return xla_memory_bytes(jax.jit(f).lower(params, opt_state, key).compile())


def measure(config: dict) -> dict:
    """Measure one configuration in this process (called in the worker subprocess)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from scifm import pinn

    d, n, s = config["dim"], config["batch_size"], config["num_samples"]
    problem = pinn.make_problem(config["pde"], d, key=jax.random.key(0))
    estimator = pinn.make_estimator(config["estimator"], s)
    model = pinn.make_model(
        problem, width=config["width"], depth=config["depth"], key=jax.random.key(1)
    )
    optimizer = pinn.make_optimizer(10_000)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))

    t = time.perf_counter()
    x = problem.sample(jax.random.key(2), n)
    g = jax.jit(jax.vmap(problem.forcing))(x)
    u_star = jax.jit(jax.vmap(problem.exact))(x)
    jax.block_until_ready((g, u_star))
    data_s = time.perf_counter() - t

    def update(loss_fn):
        @eqx.filter_jit
        def step(model, opt_state, key):
            loss, grads = eqx.filter_value_and_grad(loss_fn)(model, key)
            updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), opt_state, loss

        return step

    def plain_loss(m, key):
        return jnp.mean((jax.vmap(m)(x) - u_star) ** 2)

    def pinn_loss(m, key):
        keys = jax.random.split(key, n)
        lhs = jax.vmap(lambda y, k: problem.operator(m, y, estimator=estimator, key=k))(x, keys)
        return jnp.mean((lhs - g) ** 2)

    out = {**config, "data_s": data_s}
    raw = {"plain": update(plain_loss), "step": update(pinn_loss)}
    steps = {
        "plain": eqx.filter_jit(raw["plain"]),
        "step": eqx.filter_jit(raw["step"]),
        "iteration": pinn.make_step(problem, estimator, optimizer, n),
    }
    for name, step in steps.items():
        state = {"m": model, "o": opt_state}
        t = time.perf_counter()
        jax.block_until_ready(step(model, opt_state, jax.random.key(3)))
        out[f"{name}_compile_s"] = time.perf_counter() - t

        def run(i, step=step, state=state):
            state["m"], state["o"], loss = step(state["m"], state["o"], jax.random.key(10 + i))
            jax.block_until_ready(loss)

        out[f"{name}_s"], out[f"{name}_repeats"] = _median_time(
            run, config["repeats"], config["min_seconds"]
        )
        if name != "iteration":
            out[f"{name}_xla_bytes"] = _xla_bytes(raw[name], model, opt_state, jax.random.key(3))
    out["peak_rss_bytes"] = peak_rss_mib() * 2**20
    out["ratio"] = out["step_s"] / out["plain_s"]
    out["it_per_s"] = 1.0 / out["iteration_s"]
    return out


def bench_pinn(
    dims=(100, 1_000, 10_000, 100_000, 1_000_000),
    estimators=("stde", "stde-dense", "hte", "sdgd", "sdgd-fwd", "exact"),
    operators=("laplacian",),
    *,
    num_samples: int = 16,
    batch_size: int = 100,
    width: int = 128,
    depth: int = 4,
    repeats: int = 5,
    min_seconds: float = 2.0,
    timeout_s: float = 600.0,
    on_result=None,
) -> dict:
    """Run every (operator, d, estimator) in a subprocess; returns ``{"machine", "results"}``.

    ``operators``: ``laplacian`` (two-body Sine-Gordon, ``Lap u + sin u = g``, d >= 2) and/or
    ``biharmonic`` (three-body biharmonic on the annulus, d >= 3). Skipped configurations are
    in the results with ``"skipped"`` and the reason; a subprocess that fails or exceeds
    ``timeout_s`` is recorded with ``"error"``. ``on_result(row)`` is called after each.

    Raises:
        ValueError: before anything runs: no or unknown estimators or operators; no dims;
            a d below the operator's least; ``num_samples``, ``batch_size``, ``width``,
            ``depth`` or ``repeats`` not an integer >= 1; ``min_seconds`` negative;
            ``timeout_s`` not a positive number.
    """
    from scifm import pinn

    for op in check_nonempty("operators", operators):
        if op not in OPERATOR_PDES:
            raise UserError(f"unknown operator {op!r}; valid: {', '.join(OPERATOR_PDES)}")
    dims = check_counts("dims", dims)
    for op in operators:
        if min(dims) < MIN_DIMS[op]:
            raise UserError(f"{op} needs dims >= {MIN_DIMS[op]}, got {min(dims)}")
    for name, value in [
        ("num_samples", num_samples), ("batch_size", batch_size), ("width", width),
        ("depth", depth), ("repeats", repeats),
    ]:  # fmt: skip
        check_count(name, value)
    if not (isinstance(min_seconds, int | float) and min_seconds >= 0):
        raise UserError(f"min_seconds must be a number >= 0, got {min_seconds!r}")
    if not (isinstance(timeout_s, int | float) and 0 < timeout_s < math.inf):
        raise UserError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    objects = {
        e: pinn.make_estimator(e, num_samples) for e in check_nonempty("estimators", estimators)
    }
    results = []
    for op in operators:
        for d in dims:
            for est in estimators:
                config = dict(
                    operator=op, pde=OPERATOR_PDES[op], dim=int(d), estimator=est,
                    num_samples=num_samples, batch_size=batch_size, width=width, depth=depth,
                    repeats=repeats, min_seconds=min_seconds,
                )  # fmt: skip
                reason = skip_reason(objects[est], op, int(d), batch_size)
                if reason is not None:
                    row = {**config, "skipped": reason}
                else:
                    row = _run_worker(config, timeout_s)
                results.append(row)
                if on_result is not None:
                    on_result(row)
    return {"machine": machine(), "results": results}


def _run_worker(config: dict, timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "scifm.bench.pinn", json.dumps(config)]
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if proc.returncode in (-9, 137):
            tail = "killed (out of memory?)"
        return {**config, "error": tail[:200]}
    return json.loads(lines[-1])


def pinn_table(results: list[dict]) -> fmt.Table:
    """:func:`bench_pinn`'s results as text: plain and estimator step in ms, their ratio,
    train it/s, peak RSS and XLA step memory; a skipped or failed one shows its note."""
    columns = (
        "operator", "d", "estimator", "plain ms", "step ms", "step/plain", "train it/s",
        "peak RSS MiB", "XLA step MiB", "note",
    )  # fmt: skip
    rows = []
    for r in results:
        head = (r["operator"], f"{r['dim']:.0e}", r["estimator"])
        if "skipped" in r or "error" in r:
            rows.append((*head, *["-"] * 6, r.get("skipped") or r.get("error")))
            continue
        xla = r.get("step_xla_bytes")
        rows.append(
            (
                *head,
                fmt.ms(r["plain_s"]),
                fmt.ms(r["step_s"]),
                fmt.ratio(r["ratio"]),
                fmt.rate(r["it_per_s"]),
                fmt.mib(r["peak_rss_bytes"] / 2**20),
                fmt.mib(None if xla is None else xla / 2**20),
                "",
            )
        )
    return fmt.Table(columns, rows)


if __name__ == "__main__":  # the worker: one configuration, JSON on stdout
    print(json.dumps(measure(json.loads(sys.argv[1]))))
