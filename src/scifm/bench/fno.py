"""`scifm bench fno` and `scifm bench finetune`: train-step time and memory of the FNO presets.

No ratio here compares against a time measured elsewhere (another day, machine or
library): every ratio (``speedup`` against the PyTorch peer, ``neuralop_speedup`` against
neuraloperator's FNO where that package is installed, ``time_vs_full``, ``memory_vs_full``)
is between steps timed in the same run, their steps alternating.
"""

from __future__ import annotations

import contextlib
import time

import equinox as eqx
import jax
import numpy as np

from scifm._checks import UserError
from scifm.models import PRESETS, Normalizer, OperatorModel, get_preset
from scifm.train import STRATEGIES, get_loss, get_strategy, make_optimizer, make_train_step

from .._checks import check_count, check_counts, check_nonempty
from . import _report as fmt
from . import _torch
from ._measure import machine, xla_memory_bytes

DEFAULT_BATCH = {64: 16, 128: 8}


def _check_presets(presets) -> tuple[str, ...]:
    presets = check_nonempty("presets", presets)
    for name in presets:
        get_preset(name)  # unknown names list the valid ones
    return presets


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
        peak = xla_memory_bytes(self.compiled)
        return {
            "preset": self.preset,
            "strategy": self.strategy,
            "parameters": self.spec.parameters(),
            "resolution": self.resolution,
            "batch": self.batch,
            "step_seconds": median,
            "step_seconds_min": float(np.min(self.times)),
            "samples_per_s": self.batch / median,
            "compile_seconds": self.compile_seconds,
            "xla_peak_mib": None if peak is None else peak / 2**20,
            "device": str(jax.devices()[0].device_kind),
        }


def check_peer() -> None:
    """Raises :class:`UserError` (what to install) where the PyTorch peer cannot run."""
    if not _torch.available():
        raise UserError(_torch.INSTALL_HINT)


def _check_resolution(preset: str, resolution) -> None:
    check_count("resolution", resolution)
    modes = get_preset(preset).modes
    if 2 * modes > resolution:
        raise UserError(
            f"{preset} has {modes} modes, so resolution must be >= {2 * modes}, got {resolution}"
        )


def bench_step(
    preset: str,
    resolution: int,
    batch: int,
    steps: int = 5,
    loss: str = "relative_l2",
    strategy: str = "full",
    peer: bool = False,
) -> dict:
    """Median time of ``steps`` Adam training steps after compilation, and the step's memory.

    ``strategy`` names the fine-tuning strategy wrapped around Adam (its state is included in
    the memory, :func:`~scifm.bench.xla_memory_bytes` in MiB as ``xla_peak_mib``). With
    ``peer``, the same FNO in PyTorch (:mod:`scifm.bench._torch`, a worker process) is stepped
    after each of scifm's steps, and the row gains ``peer_step_seconds`` and ``speedup``
    (the peer's median over scifm's: above 1, scifm is faster); where the ``neuraloperator``
    package is installed, its FNO is stepped too and the same keys come prefixed ``neuralop_``.

    Raises:
        ValueError: an unknown preset, loss or strategy; ``batch`` or ``steps`` not an
            integer >= 1; ``resolution`` below ``2 * modes`` of the preset; ``peer`` without
            PyTorch installed, or with a loss or strategy other than the defaults.
    """
    _check_resolution(preset, resolution)
    check_count("batch", batch)
    check_count("steps", steps)
    get_loss(loss)
    get_strategy(strategy)
    if peer:
        check_peer()
    if peer and (loss, strategy) != ("relative_l2", "full"):
        raise UserError("the PyTorch peer trains with the relative L2 loss and plain Adam only")
    stepper = _Stepper(preset, resolution, batch, loss, strategy)
    if not peer:
        for _ in range(steps):
            stepper()
        return stepper.row()
    spec = stepper.spec
    config = {"width": spec.width, "modes": spec.modes, "layers": spec.layers}
    config.update(in_channels=7, out_channels=1, batch=batch, resolution=resolution)
    libraries = ["pytorch"] + (["neuralop"] if _torch.available("neuralop") else [])
    with contextlib.ExitStack() as stack:
        others = {
            name: stack.enter_context(_torch.PeerProcess({**config, "library": name}))
            for name in libraries
        }
        for _ in range(steps):  # alternating, so drifts of the machine hit all alike
            stepper()
            for other in others.values():
                other()
    row = stepper.row()
    for name, other in others.items():
        median = float(np.median(other.times))
        prefix = "" if name == "pytorch" else f"{name}_"  # the PyTorch peer's keys as before
        row.update({prefix + key: value for key, value in other.info.items()})
        row.update(
            {
                f"{prefix}peer_step_seconds": median,
                f"{prefix}peer_step_seconds_min": float(np.min(other.times)),
                f"{prefix}speedup": median / row["step_seconds"],
            }
        )
    return row


def bench_fno(
    presets: tuple[str, ...] = tuple(PRESETS),
    resolutions: tuple[int, ...] = (64, 128),
    batch: dict[int, int] | None = None,
    steps: int = 5,
    report=print,
    peer: bool | None = None,
) -> dict:
    """Every preset at every resolution it fits (``2 * modes <= resolution``; the others are
    listed in ``skipped``), batch ``batch[resolution]`` (default 16 at 64, else 8), each
    beside the PyTorch peer (see :func:`bench_step`) when ``peer`` is true, or, when it is
    None, where PyTorch is installed (otherwise ``notes`` says what to install).

    ``report(row)`` is called after each measurement.

    Raises:
        ValueError: no or unknown presets; no resolutions, or one not an integer >= 1; a
            batch or ``steps`` not an integer >= 1.
    """
    presets = _check_presets(presets)
    resolutions = check_counts("resolutions", resolutions)
    batch = {**DEFAULT_BATCH, **(batch or {})}
    for resolution in resolutions:
        check_count(f"batch at resolution {resolution}", batch.get(resolution, 8))
    check_count("steps", steps)
    notes = []
    if peer is None:
        peer = _torch.available()
        if not peer:
            notes.append(_torch.INSTALL_HINT)
    elif peer:
        check_peer()
    rows, skipped = [], []
    for resolution in resolutions:
        for name in presets:
            modes = get_preset(name).modes
            if 2 * modes > resolution:
                skipped.append(f"{name} at {resolution}: {modes} modes need >= {2 * modes} points")
                continue
            row = bench_step(name, resolution, batch.get(resolution, 8), steps, peer=peer)
            rows.append(row)
            report(row)
    return {
        "benchmark": "fno",
        "machine": {**machine(), "jax": jax.__version__, "backend": jax.default_backend()},
        "steps": steps,
        "rows": rows,
        "skipped": skipped,
        "notes": notes,
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

    All steps are compiled first and then timed in turns, one step of each strategy per round,
    so ``time_vs_full`` and ``memory_vs_full`` compare steps of the same run (present when
    ``full`` is among ``strategies``). ``report(row)`` is called for each row at the end.

    Raises:
        ValueError: an unknown preset or strategy, no strategies; ``batch`` or ``steps`` not
            an integer >= 1; ``resolution`` below ``2 * modes`` of the preset.
    """
    _check_resolution(preset, resolution)
    check_count("batch", batch)
    check_count("steps", steps)
    for name in check_nonempty("strategies", strategies):
        get_strategy(name)
    steppers = [_Stepper(preset, resolution, batch, strategy=name) for name in strategies]
    for _ in range(steps):  # interleaved, so drifts of the machine hit every strategy alike
        for stepper in steppers:
            stepper()
    rows = [stepper.row() for stepper in steppers]
    full = next((r for r in rows if r["strategy"] == "full"), None)
    for r in rows:
        if full is not None:
            r["time_vs_full"] = r["step_seconds"] / full["step_seconds"]
            if r["xla_peak_mib"] and full["xla_peak_mib"]:
                r["memory_vs_full"] = r["xla_peak_mib"] / full["xla_peak_mib"]
        report(r)
    return {
        "benchmark": "finetune",
        "machine": {**machine(), "jax": jax.__version__, "backend": jax.default_backend()},
        "preset": preset,
        "resolution": resolution,
        "batch": batch,
        "steps": steps,
        "rows": rows,
    }


def fno_table(rows: list[dict]) -> fmt.Table:
    """:func:`bench_fno`'s rows as text: step time, samples/s and XLA memory per preset, and
    the PyTorch peer's step time and the speed-up over it where it was measured."""
    columns = ("preset", "params", "res", "batch", "s/step", "samples/s", "peak MiB")
    columns += ("torch s/step", "speed-up")
    prefixes = [""]
    if any("neuralop_peer_step_seconds" in r for r in rows):
        columns += ("neuralop params", "neuralop s/step", "speed-up")
        prefixes.append("neuralop_")

    def peer(r, prefix):
        seconds = r.get(f"{prefix}peer_step_seconds")
        cells = (fmt.seconds(seconds) if seconds is not None else "-",)
        cells += (fmt.ratio(r.get(f"{prefix}speedup")),)
        if prefix:
            count = r.get(f"{prefix}peer_parameters")
            cells = (fmt.count(count) if count is not None else "-", *cells)
        return cells

    cells = [
        (
            r["preset"],
            fmt.count(r["parameters"]),
            str(r["resolution"]),
            str(r["batch"]),
            fmt.seconds(r["step_seconds"]),
            fmt.rate(r["samples_per_s"]),
            fmt.mib(r["xla_peak_mib"]),
            *(cell for prefix in prefixes for cell in peer(r, prefix)),
        )
        for r in rows
    ]
    return fmt.Table(columns, cells)


def finetune_table(rows: list[dict]) -> fmt.Table:
    """:func:`bench_finetune`'s rows as text: time and memory of each strategy, and both
    as multiples of ``full``'s in the same run."""
    columns = ("strategy", "s/step", "time x full", "peak MiB", "memory x full")
    cells = [
        (
            r["strategy"],
            fmt.seconds(r["step_seconds"], 4),
            fmt.ratio(r.get("time_vs_full"), 3),
            fmt.mib(r["xla_peak_mib"]),
            fmt.ratio(r.get("memory_vs_full"), 3),
        )
        for r in rows
    ]
    title = None
    if rows:
        r = rows[0]
        title = f"{r['preset']} at {r['resolution']}x{r['resolution']}, batch {r['batch']}"
    return fmt.Table(columns, cells, title)
