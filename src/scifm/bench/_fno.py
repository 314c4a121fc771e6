"""`scifm bench fno`: train-step time and memory of the FNO presets."""

from __future__ import annotations

import time

import equinox as eqx
import jax
import numpy as np

from scifm.bench._data import machine
from scifm.models import PRESETS, Normalizer, OperatorModel, get_preset
from scifm.train import STRATEGIES, get_loss, get_strategy, make_optimizer, make_train_step

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


class _Stepper:
    """One compiled training step of a preset on random data, ready to time."""

    def __init__(self, preset, resolution, batch, loss="relative_l2", strategy="full"):
        self.spec, self.preset, self.strategy = get_preset(preset), preset, strategy
        self.resolution, self.batch = resolution, batch
        net = self.spec.build(7, 1, key=jax.random.key(0))
        self.model = OperatorModel(Normalizer(1.0, np.ones(6)), net)
        optimizer = make_optimizer(get_strategy(strategy))
        self.state = eqx.filter_jit(optimizer.init)(eqx.filter(net, eqx.is_inexact_array))
        self.lr = np.float32(1e-3)
        self.step = make_train_step(optimizer, get_loss(loss))
        rng = np.random.default_rng(0)
        self.data = (
            rng.normal(size=(batch, 1, resolution, resolution)).astype(np.float32),
            rng.uniform(size=(batch, 6)).astype(np.float32),
            rng.normal(size=(batch, 1, resolution, resolution)).astype(np.float32),
        )
        start = time.perf_counter()
        self.compiled = self.step.lower(self.model, self.state, *self.data, self.lr).compile()
        self.compile_seconds = time.perf_counter() - start
        self.times: list[float] = []
        self(record=False)

    def __call__(self, record: bool = True) -> None:
        start = time.perf_counter()
        self.model, self.state, value = self.step(self.model, self.state, *self.data, self.lr)
        jax.block_until_ready(value)
        if record:
            self.times.append(time.perf_counter() - start)

    def row(self) -> dict:
        median = float(np.median(self.times))
        row = {
            "preset": self.preset,
            "strategy": self.strategy,
            "parameters": self.spec.parameters(),
            "resolution": self.resolution,
            "batch": self.batch,
            "step_seconds": median,
            "step_seconds_min": float(np.min(self.times)),
            "samples_per_s": self.batch / median,
            "compile_seconds": self.compile_seconds,
            "xla_peak_mib": _memory(self.compiled),
            "device": str(jax.devices()[0].device_kind),
        }
        ref = REFERENCE_SECONDS.get((self.preset, self.resolution, self.batch))
        if ref is not None:
            row["reference_step_seconds"] = ref
            row["speedup_vs_reference"] = ref / median
        return row


def bench_step(
    preset: str,
    resolution: int,
    batch: int,
    steps: int = 5,
    loss: str = "relative_l2",
    strategy: str = "full",
) -> dict:
    """Median time of ``steps`` Adam training steps after compilation, and the step's memory.

    ``strategy`` names the fine-tuning strategy wrapped around Adam (its state is included in
    the memory).
    """
    stepper = _Stepper(preset, resolution, batch, loss, strategy)
    for _ in range(steps):
        stepper()
    return stepper.row()


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


def bench_finetune(
    preset: str = "fno-1m",
    resolution: int = 64,
    batch: int = 16,
    strategies: tuple[str, ...] = tuple(STRATEGIES),
    steps: int = 10,
    report=print,
) -> dict:
    """Step time and XLA memory of every fine-tuning strategy, side by side, against ``full``.

    All steps are compiled first and then timed in turns, one step of each strategy per round.
    """
    steppers = [_Stepper(preset, resolution, batch, strategy=name) for name in strategies]
    for _ in range(steps):  # interleaved, so drifts of the machine hit every strategy alike
        for stepper in steppers:
            stepper()
    rows = [stepper.row() for stepper in steppers]
    for row in rows:
        report(row)
    full = next((r for r in rows if r["strategy"] == "full"), None)
    for r in rows:
        if full is not None:
            r["time_vs_full"] = r["step_seconds"] / full["step_seconds"]
            if r["xla_peak_mib"] and full["xla_peak_mib"]:
                r["memory_vs_full"] = r["xla_peak_mib"] / full["xla_peak_mib"]
    return {
        "benchmark": "finetune",
        "machine": {**machine(), "jax": jax.__version__, "backend": jax.default_backend()},
        "steps": steps,
        "rows": rows,
    }
