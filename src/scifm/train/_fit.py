"""The fit loop: a pure jitted step, and a thin Python loop for epochs, checkpoints and logs.

A run directory holds::

    config.json      resolved arguments, data, model hyper-parameters, scifm version, git revision
    checkpoint.eqx   best weights by validation error (+ model.json, the hyper-parameters)
    state.json       where training stands (epoch, step inside it, best so far), for resuming,
    state-<n>.eqx    with the weights and optimizer state it names; saved every epoch and every
                     ``checkpoint_every`` seconds inside long epochs
    metrics.jsonl    one line per epoch: train loss, validation error, learning rate, throughput
    loss.png         loss and validation curves
    result.json      written last: best epoch, validation error, timings

``fit`` on a directory with an unfinished run resumes from its last saved state (an epoch end,
or a step inside an epoch); since shuffling is seeded by ``(seed, epoch)`` the resumed run
follows the uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scifm import __version__
from scifm.data import FieldSet, epoch_batches
from scifm.models import OperatorModel, count_parameters
from scifm.train import _checkpoint
from scifm.train._losses import get_loss, relative_l2_per_sample
from scifm.train._strategies import AbstractStrategy, Full

FULL = Full()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the run directory keeps the last good epoch."""


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cosine_lr(lr: float, total_steps: int, step: int) -> float:
    """The study's schedule: ``lr`` decayed to 0 by a half cosine over ``total_steps``."""
    t = min(max(step, 0), max(total_steps, 1)) / max(total_steps, 1)
    return 0.5 * lr * (1.0 + math.cos(math.pi * t))


def _scale_by_learning_rate_argument() -> optax.GradientTransformationExtraArgs:
    """Multiply updates by ``-learning_rate``, given at each update as an argument.

    The learning rate is data, not part of the compiled step: one compilation serves a whole
    learning-rate grid and any schedule.
    """

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None, *, learning_rate, **extra):
        return jax.tree.map(lambda g: (-learning_rate * g).astype(g.dtype), updates), state

    return optax.GradientTransformationExtraArgs(init, update)


def make_optimizer(strategy: AbstractStrategy = FULL) -> optax.GradientTransformation:
    """Adam, scaled by the ``learning_rate`` passed to each update, wrapped by ``strategy``."""
    return strategy.wrap(optax.chain(optax.scale_by_adam(), _scale_by_learning_rate_argument()))


def make_train_step(optimizer: optax.GradientTransformation, loss_fn):
    """A pure step ``(model, opt_state, f, c, u, lr) -> (model, opt_state, loss)``; only ``net`` trains.

    ``lr`` is a scalar array (a Python float would be a compile-time constant).
    """

    @eqx.filter_jit
    def step(model: OperatorModel, opt_state, f, c, u, lr):
        def objective(net):
            pred = jax.vmap(OperatorModel(model.normalizer, net))(f, c)
            return loss_fn(pred, u)

        loss, grads = eqx.filter_value_and_grad(objective)(model.net)
        params = eqx.filter(model.net, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params, learning_rate=lr)
        net = eqx.apply_updates(model.net, updates)
        return OperatorModel(model.normalizer, net), opt_state, loss

    return step


@functools.cache
def _optimizer_and_step(strategy: AbstractStrategy, loss: str):
    """One optimizer and compiled step per (strategy, loss): runs in one process share them."""
    optimizer = make_optimizer(strategy)
    return optimizer, make_train_step(optimizer, get_loss(loss))


@eqx.filter_jit
def _errors(model: OperatorModel, f, c, u):
    return relative_l2_per_sample(jax.vmap(model)(f, c), u)


def errors(model: OperatorModel, fields: FieldSet, batch_size: int = 32) -> np.ndarray:
    """Per-sample relative L2 errors of ``model`` on ``fields`` (batches padded to one shape)."""
    n = len(fields)
    size = min(batch_size, n)
    out = np.empty(n)
    for lo in range(0, n, size):
        index = np.arange(lo, min(lo + size, n))
        padded = np.resize(index, size)  # repeat samples to keep the compiled shape
        f, c, u = fields.take(padded)
        out[index] = np.asarray(_errors(model, f, c, u))[: len(index)]
    return out


def summarise(errs: np.ndarray) -> dict:
    """The metric: mean per-sample relative L2 error, and its spread."""
    return {
        "rel_l2_mean": float(np.mean(errs)),
        "rel_l2_std": float(np.std(errs)),
        "rel_l2_median": float(np.median(errs)),
        "rel_l2_p90": float(np.quantile(errs, 0.9)),
        "n": int(len(errs)),
    }


def evaluate(model: OperatorModel, fields: FieldSet, batch_size: int = 32) -> dict:
    """Mean per-sample relative L2 error on ``fields`` and its spread."""
    return summarise(errors(model, fields, batch_size))


def _sharding():
    """Data-parallel over all local devices when there are several."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    mesh = Mesh(np.array(devices), ("data",))
    return NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _comparable(config: dict) -> dict:
    return {
        k: v for k, v in config.items() if k not in ("scifm_version", "git_revision", "created")
    }


def fit(
    model: OperatorModel,
    train: FieldSet,
    val: FieldSet,
    out: str | Path,
    *,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-3,
    loss: str = "relative_l2",
    strategy: AbstractStrategy = FULL,
    seed: int = 0,
    validate_every: int = 1,
    eval_batch_size: int = 32,
    checkpoint_every: float = 600.0,
    metadata: dict[str, Any] | None = None,
    progress=True,
) -> dict:
    """Train ``model.net`` on ``train``, validating on ``val``; see the module docstring.

    Args:
        model: the model to train (its normaliser is kept fixed); with a fine-tuning
            ``strategy``, the weights it starts from are the pre-trained ones.
        train, val: training and validation samples.
        out: run directory; an unfinished run there with the same configuration is resumed.
        epochs, batch_size, lr: Adam with the learning rate decayed from ``lr`` to 0 by a half
            cosine over ``epochs * max(1, n // batch_size)`` steps.
        loss: ``"relative_l2"`` (default) or ``"sse"`` (the reference's summed squared error).
        strategy: which parameters train and how (:mod:`scifm.train` strategies); default all.
        seed: shuffling seed (the model was initialised by the caller).
        validate_every: validate (and save the resumable state) every this many epochs, and
            after the last; few-shot runs of many tiny epochs validate less often.
        checkpoint_every: also save the resumable state between validations when this many
            seconds have passed since the last save.
        metadata: more entries for config.json (data paths, preset, ...).
        progress: show a progress bar (bool), or a factory ``(total_steps, done_steps) -> bar``
            of an object with ``advance(samples, loss)``, ``epoch(epoch, val)`` and ``close()``.

    Returns:
        The contents of result.json.

    Raises:
        ValueError: bad arguments, or ``out`` holds a run with another configuration.
        FileExistsError: ``out`` holds a finished run.
        TrainingDiverged: the loss became NaN or Inf.
    """
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("eval_batch_size", eval_batch_size),
        ("validate_every", validate_every),
    ):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr}")
    get_loss(loss)
    out = Path(out)
    if (out / "result.json").exists():
        raise FileExistsError(f"{out} holds a finished run; choose another --out")
    hyper = _checkpoint.hyperparameters(model, **(metadata or {}).get("model", {}))
    config = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "loss": loss,
        "strategy": {"name": strategy.name, **dataclasses.asdict(strategy)},
        "seed": seed,
        "validate_every": validate_every,
        "train": train.name,
        "n_train": len(train),
        "val": val.name,
        "n_val": len(val),
        "parameters": count_parameters(model.net),
        "model": hyper,
        **{k: v for k, v in (metadata or {}).items() if k != "model"},
        "scifm_version": __version__,
        "git_revision": git_revision(),
    }
    steps_per_epoch = len(epoch_batches(len(train), batch_size, seed, 0))
    total_steps = epochs * steps_per_epoch
    optimizer, step = _optimizer_and_step(strategy, loss)
    opt_state = optimizer.init(eqx.filter(model.net, eqx.is_inexact_array))
    state = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "seconds": 0.0}

    if (out / "config.json").exists():
        old = json.loads((out / "config.json").read_text())
        if _comparable(old) != _comparable(config):
            keys = sorted(
                k
                for k in set(old) | set(config)
                if old.get(k) != config.get(k) and k not in ("scifm_version", "git_revision")
            )
            raise ValueError(
                f"{out} holds an unfinished run with another configuration ({', '.join(keys)}); "
                "choose another --out"
            )
        if (out / "state.json").exists():
            model, opt_state, state = _load_state(out, model, opt_state)
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not a scifm run directory; choose another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        _checkpoint.atomic_write_text(out / "config.json", json.dumps(config, indent=2))
    # metrics written after the last saved state belong to epochs that will be redone
    metrics = [m for m in _read_jsonl(out / "metrics.jsonl") if m["epoch"] <= state["epoch"]]
    _checkpoint.atomic_write_text(
        out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics)
    )

    sharding = _sharding()
    if sharding is not None and min(batch_size, len(train)) % len(jax.devices()):
        sharding = None  # the batch does not split evenly: run on one device
    if sharding is not None:
        model = eqx.filter_shard(model, sharding[1])
        opt_state = eqx.filter_shard(opt_state, sharding[1])
    done_steps = state["epoch"] * steps_per_epoch + state.get("step_in_epoch", 0)
    if callable(progress):  # a factory of a caller's bar (e.g. a sweep's display)
        bar = progress(total_steps, done_steps)
    else:
        from scifm._progress import Display, TrainingBar

        bar = TrainingBar(
            Display(progress).bar("train", total_steps, done_steps), owns_display=True
        )
    # training losses and time since the last validation (carried over by a mid-block save)
    losses = state.pop("losses", [])
    train_seconds = state.pop("train_seconds", 0.0)
    block_start = time.perf_counter() - state.pop("block_seconds", 0.0)
    saved = time.perf_counter()
    try:
        for epoch in range(state["epoch"] + 1, epochs + 1):
            done = state.pop("step_in_epoch", 0)  # batches of this epoch already taken (resumed)
            for k, index in enumerate(epoch_batches(len(train), batch_size, seed, epoch)):
                if k < done:
                    continue
                tic = time.perf_counter()
                f, c, u = train.take(index)
                if sharding is not None:
                    f, c, u = (jax.device_put(a, sharding[0]) for a in (f, c, u))
                at = (epoch - 1) * steps_per_epoch + k
                rate = np.float32(cosine_lr(lr, total_steps, at))
                model, opt_state, value = step(model, opt_state, f, c, u, rate)
                value = float(value)
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"loss became {value} in epoch {epoch}; the run keeps its last checkpoint. "
                        f"Lower the learning rate (now {lr}) or check the data"
                    )
                losses.append(value)
                train_seconds += time.perf_counter() - tic
                bar.advance(len(index), value)
                if time.perf_counter() - saved >= checkpoint_every and at + 1 < total_steps:
                    mid = {
                        **state,
                        "epoch": epoch - 1 if k + 1 < steps_per_epoch else epoch,
                        "step_in_epoch": (k + 1) % steps_per_epoch,
                        "losses": losses,
                        "train_seconds": train_seconds,
                        "block_seconds": time.perf_counter() - block_start,
                    }
                    _save_state(out, model, opt_state, mid)
                    saved = time.perf_counter()
            if epoch % validate_every and epoch != epochs:
                continue
            val_errors = errors(model, val, eval_batch_size)
            seconds = time.perf_counter() - block_start
            record = {
                "epoch": epoch,
                "step": epoch * steps_per_epoch,
                "train_loss": float(np.mean(losses)),
                "val_rel_l2": float(np.mean(val_errors)),
                "val_rel_l2_std": float(np.std(val_errors)),
                "lr": cosine_lr(lr, total_steps, epoch * steps_per_epoch),
                "seconds": seconds,
                "samples_per_s": len(losses)
                * min(batch_size, len(train))
                / max(train_seconds, 1e-9),
            }
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            if record["val_rel_l2"] < state["best_val"]:
                state.update(best_val=record["val_rel_l2"], best_epoch=epoch)
                _checkpoint.save(out, model, **(metadata or {}).get("model", {}))
            state["epoch"] = epoch
            state["seconds"] += seconds
            _save_state(out, model, opt_state, state)
            bar.epoch(epoch, record["val_rel_l2"])
            losses, train_seconds, block_start = [], 0.0, time.perf_counter()
            saved = time.perf_counter()
    finally:
        bar.close()
    result = {
        "best_epoch": state["best_epoch"],
        "best_val_rel_l2": state["best_val"],
        "epochs": epochs,
        "steps": total_steps,
        "train_seconds": state["seconds"],
        "parameters": count_parameters(model.net),
    }
    from scifm.train._plots import plot_curves

    plot_curves(_read_jsonl(out / "metrics.jsonl"), out / "loss.png", loss)
    _checkpoint.atomic_write_text(out / "result.json", json.dumps(result, indent=2))
    return result


def _save_state(out: Path, model, opt_state, state: dict) -> None:
    """Save the resumable state so that a kill at any moment leaves a consistent pair.

    Weights and optimizer state go to a new ``state-<step>.eqx``; then ``state.json`` (counters
    plus the name of that file) is replaced atomically; only then is the previous file removed.
    """
    step = state["epoch"] * 10**9 + state.get("step_in_epoch", 0)  # unique, increasing
    name = f"state-{step}.eqx"
    snapshot = (model, opt_state)
    _checkpoint.atomic_write_bytes(out / name, lambda fh: eqx.tree_serialise_leaves(fh, snapshot))
    _checkpoint.atomic_write_text(out / "state.json", json.dumps({**state, "weights": name}))
    for old in out.glob("state-*.eqx"):
        if old.name != name:
            old.unlink()


def _load_state(out: Path, model, opt_state):
    state = json.loads((out / "state.json").read_text())
    model, opt_state = eqx.tree_deserialise_leaves(out / state.pop("weights"), (model, opt_state))
    return model, opt_state, state
