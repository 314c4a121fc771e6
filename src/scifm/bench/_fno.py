"""`scifm bench fno`: train-step time and memory of the FNO presets."""

from __future__ import annotations

import time

import equinox as eqx
import jax
import numpy as np

from scifm.bench._data import machine
from scifm.data import Normalizer
from scifm.models import PRESETS, OperatorModel, get_preset
from scifm.train import get_loss, make_optimizer, make_train_step

# The reference PyTorch FNO (Adam, 2-core CPU of this project), Subramanian et al.'s code.
REFERENCE_SECONDS = {("fno-4m", 64, 16): 0.457, ("fno-67m", 128, 8): 4.40}
DEFAULT_BATCH = {64: 16, 128: 8}


def _memory(compiled) -> float | None:
    """Peak bytes of the compiled step from XLA's buffer assignment, in MiB (None if unknown)."""
    try:
        m = getattr(compiled, "compiled", compiled).memory_analysis()  # equinox wraps jax's object
        total = (
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        )
        return total / 2**20
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def bench_step(
    preset: str, resolution: int, batch: int, steps: int = 5, loss: str = "relative_l2"
) -> dict:
    """Median time of ``steps`` Adam training steps after compilation, and the step's memory."""
    spec = get_preset(preset)
    key = jax.random.key(0)
    net = spec.build(7, 1, key=key)
    model = OperatorModel(Normalizer(1.0, np.ones(6)), net)
    optimizer = make_optimizer()
    opt_state = eqx.filter_jit(optimizer.init)(eqx.filter(net, eqx.is_inexact_array))
    lr = np.float32(1e-3)
    step = make_train_step(optimizer, get_loss(loss))
    rng = np.random.default_rng(0)
    f = rng.normal(size=(batch, 1, resolution, resolution)).astype(np.float32)
    c = rng.uniform(size=(batch, 6)).astype(np.float32)
    u = rng.normal(size=(batch, 1, resolution, resolution)).astype(np.float32)
    start = time.perf_counter()
    compiled = step.lower(model, opt_state, f, c, u, lr).compile()
    compile_seconds = time.perf_counter() - start
    model, opt_state, value = step(model, opt_state, f, c, u, lr)
    jax.block_until_ready(value)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model, opt_state, value = step(model, opt_state, f, c, u, lr)
        jax.block_until_ready(value)
        times.append(time.perf_counter() - start)
    row = {
        "preset": preset,
        "parameters": spec.parameters(),
        "resolution": resolution,
        "batch": batch,
        "step_seconds": float(np.median(times)),
        "step_seconds_min": float(np.min(times)),
        "samples_per_s": batch / float(np.median(times)),
        "compile_seconds": compile_seconds,
        "xla_peak_mib": _memory(compiled),
        "device": str(jax.devices()[0].device_kind),
    }
    ref = REFERENCE_SECONDS.get((preset, resolution, batch))
    if ref is not None:
        row["reference_step_seconds"] = ref
        row["speedup_vs_reference"] = ref / row["step_seconds"]
    return row


def bench_fno(
    presets: tuple[str, ...] = tuple(PRESETS),
    resolutions: tuple[int, ...] = (64, 128),
    batch: dict[int, int] | None = None,
    steps: int = 5,
    report=print,
) -> dict:
    """Every preset at every resolution it fits (``2 * modes <= resolution``)."""
    batch = batch or DEFAULT_BATCH
    rows, skipped = [], []
    for resolution in resolutions:
        for name in presets:
            if 2 * get_preset(name).modes > resolution:
                skipped.append(
                    f"{name} at {resolution}: {get_preset(name).modes} modes need >= {2 * get_preset(name).modes} points"
                )
                continue
            row = bench_step(name, resolution, batch.get(resolution, 8), steps)
            rows.append(row)
            report(row)
    return {
        "benchmark": "fno",
        "machine": {**machine(), "jax": jax.__version__, "backend": jax.default_backend()},
        "steps": steps,
        "rows": rows,
        "skipped": skipped,
    }
