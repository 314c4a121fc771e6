"""The fit loop: a pure jitted step, and a thin Python loop for epochs, checkpoints and logs.

A run directory (:mod:`scifm._runs`, the layout every pillar shares) holds::

    config.json      resolved arguments, data, model hyper-parameters, scifm version, git revision
    checkpoint.eqx   best weights by validation error (+ model.json, the hyper-parameters)
    state.json       where training stands (epoch, step inside it, best so far), for resuming,
    state-<n>.eqx    with the weights and optimizer state it names; saved at every validation
                     and every ``checkpoint_every`` seconds inside long epochs
    metrics.jsonl    one line per validation: train loss, validation error, learning rate, rate
    result.json      written last: best epoch, validation error, timings

``fit`` on a directory with an unfinished run resumes from its last saved state (a validation,
or a step inside an epoch); since shuffling is seeded by ``(seed, epoch)`` the resumed run
follows the uninterrupted one exactly, and ends with the same ``metrics.jsonl``, best
checkpoint and result. Plots are the caller's (:func:`scifm.train.plot_curves`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scifm._checks import UserError, check_count, check_non_negative, check_positive
from scifm._progress import NoProgress, RunProgress
from scifm._runs import DivergenceError, RunDirectory
from scifm.data import FieldSet, epoch_batches
from scifm.models import OperatorModel, count_parameters
from scifm.train import _distributed as distributed
from scifm.train._checkpoint import hyperparameters
from scifm.train._evaluate import errors
from scifm.train._logging import check_loggers, make_loggers
from scifm.train._losses import relative_l2
from scifm.train._physics import physics_residuals
from scifm.train._strategies import AbstractStrategy, Full


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


def make_optimizer(
    strategy: AbstractStrategy = Full(), base: optax.GradientTransformation | None = None
) -> optax.GradientTransformation:
    """``base`` (default Adam's scaling, ``optax.scale_by_adam()``), then the ``learning_rate``
    passed to each update, wrapped by ``strategy``."""
    base = optax.scale_by_adam() if base is None else base
    return strategy.wrap(optax.chain(base, _scale_by_learning_rate_argument()))


@eqx.filter_jit
def _init_optimizer(strategy: AbstractStrategy, params):
    """The optimiser state of ``params``, in one compiled call (eagerly, every operation of
    a strategy's state, e.g. SPIDER's ranks, would compile once per tensor shape)."""
    return make_optimizer(strategy).init(params)


def _update(optimizer, loss_fn, model: OperatorModel, opt_state, f, c, u, lr):
    """One Adam step on ``loss_fn(model(f, c), u)`` (``loss_fn(pred, u, f, c)`` for a loss that
    ``uses_inputs``, e.g. a physics residual); only ``model.net`` trains."""
    with_inputs = getattr(loss_fn, "uses_inputs", False)

    def objective(net):
        pred = jax.vmap(eqx.tree_at(lambda m: m.net, model, net))(f, c)
        return loss_fn(pred, u, f, c) if with_inputs else loss_fn(pred, u)

    loss, grads = eqx.filter_value_and_grad(objective)(model.net)
    params = eqx.filter(model.net, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params, learning_rate=lr)
    net = eqx.apply_updates(model.net, updates)
    return eqx.tree_at(lambda m: m.net, model, net), opt_state, loss


def make_train_step(optimizer: optax.GradientTransformation, loss_fn: Callable):
    """A pure step ``(model, opt_state, f, c, u, lr) -> (model, opt_state, loss)``; only ``net`` trains.

    ``lr`` is a scalar array (a Python float would be a compile-time constant).
    """

    @eqx.filter_jit
    def step(model: OperatorModel, opt_state, f, c, u, lr):
        return _update(optimizer, loss_fn, model, opt_state, f, c, u, lr)

    return step


@eqx.filter_jit
def _fit_step(model, opt_state, f, c, u, lr, loss_fn, strategy):
    # loss_fn and strategy are static (hashable): JAX's own cache gives every run in a process
    # with the same loss, strategy and shapes one compiled step
    return _update(make_optimizer(strategy), loss_fn, model, opt_state, f, c, u, lr)


def data_parallel(devices: list | None = None) -> tuple[NamedSharding, NamedSharding] | None:
    """Shardings for data-parallel training over ``devices`` (default: every device of every
    process, see :func:`scifm.train.initialize_distributed`): ``(batch sharding, replicated
    sharding)``, or None for a single device."""
    devices = jax.devices() if devices is None else devices
    if len(devices) == 1:
        return None
    mesh = Mesh(np.array(devices), ("data",))
    return NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())


def _check_arguments(
    train, val, epochs, batch_size, lr, eval_batch_size, validate_every, checkpoint_every
) -> None:
    for name, count in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("eval_batch_size", eval_batch_size),
        ("validate_every", validate_every),
    ):
        check_count(name, count)
    check_positive("lr", lr)
    check_non_negative("checkpoint_every", checkpoint_every)  # 0: after every step
    if len(train) == 0 or len(val) == 0:
        raise UserError("the training and validation sets must hold at least one sample each")


def _validation_record(
    epoch, val_errors, losses, train_seconds, seconds, lr, total_steps, steps_per_epoch, batch
) -> dict:
    """The ``metrics.jsonl`` row of a validation after ``epoch``."""
    return {
        "epoch": epoch,
        "step": epoch * steps_per_epoch,
        "train_loss": float(np.mean(losses)),
        "val_rel_l2": float(np.mean(val_errors)),
        "val_rel_l2_std": float(np.std(val_errors)),
        "lr": cosine_lr(lr, total_steps, epoch * steps_per_epoch),
        "seconds": seconds,
        "samples_per_s": len(losses) * batch / max(train_seconds, 1e-9),
    }


def _selection_key(loss: Callable) -> str:
    """What picks the best checkpoint: the validation error, or for a physics loss the
    residual on the validation inputs (label-free model selection)."""
    return "val_residual" if hasattr(loss, "residuals") else "val_rel_l2"


def fit(
    model: OperatorModel,
    train: FieldSet,
    val: FieldSet,
    out: str | Path,
    *,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-3,
    loss: Callable = relative_l2,
    strategy: AbstractStrategy = Full(),
    seed: int = 0,
    validate_every: int = 1,
    eval_batch_size: int = 32,
    checkpoint_every: float = 600.0,
    sharding: tuple[NamedSharding, NamedSharding] | None = None,
    metadata: dict[str, Any] | None = None,
    progress: RunProgress = NoProgress(),
    log: Sequence[str] = (),
) -> dict:
    """Train ``model.net`` on ``train``, validating on ``val``; see the module docstring.

    Args:
        model: the model to train (its normaliser is kept fixed); with a fine-tuning
            ``strategy``, the weights it starts from are the pre-trained ones.
        train, val: training and validation samples.
        out: run directory; an unfinished run there with the same configuration is resumed.
        epochs, batch_size, lr: Adam with the learning rate decayed from ``lr`` to 0 by a half
            cosine over ``epochs * max(1, n // batch_size)`` steps.
        loss: ``loss(pred, target)`` over a batch (:data:`scifm.train.LOSSES` names the
            shipped ones: mean relative L2, the default, and the TL-scaling code's summed squared
            error); it must be a stable, hashable function (a module-level one). A
            :class:`scifm.train.PhysicsLoss` trains on the equation's residual (targets that are
            NaN mark unlabelled samples) and selects the best checkpoint by the residual on the
            validation inputs (``val_residual`` in metrics.jsonl, ``best_val_residual`` in
            result.json); the validation error against the labels is still recorded.
        strategy: which parameters train and how (:mod:`scifm.train` strategies); default all.
        seed: shuffling seed (the model was initialised by the caller).
        validate_every: validate (and save the resumable state) every this many epochs, and
            after the last; few-shot runs of many tiny epochs validate less often.
        checkpoint_every: also save the resumable state between validations when this many
            seconds have passed since the last save (0: after every step).
        sharding: ``(batch, replicated)`` shardings for data-parallel training (for example
            :func:`data_parallel`); default None: one device, whatever is visible.
        metadata: more entries for config.json (data paths, preset, ...); ``metadata["model"]``
            goes into model.json.
        progress: shown the run's steps (:class:`scifm._progress.RunBar`); default nothing.
        log: copies of the metrics for other tools, ``"tensorboard[:DIR]"`` and
            ``"mlflow[:STORE]"`` (:func:`scifm.train.make_loggers`; the ``log`` extra); not part
            of the run's configuration, so a run may resume with or without them.

    Returns:
        The contents of result.json.

    Raises:
        ValueError: bad arguments; :class:`scifm._runs.RunError` (a ValueError) when ``out``
            holds a run of another configuration or something else;
            :class:`scifm._runs.RunFinished` when it holds this run finished.
        DivergenceError: the loss became NaN or Inf.
    """
    _check_arguments(
        train, val, epochs, batch_size, lr, eval_batch_size, validate_every, checkpoint_every
    )
    check_loggers(log)
    for fields in (train, val):
        model.check_channels(fields.input_names, fields.output_names, fields.name or "the data")
        if hasattr(loss, "check"):
            loss.check(fields)
    select = _selection_key(loss)
    hyper = hyperparameters(model, **(metadata or {}).get("model", {}))
    config = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "loss": getattr(loss, "__name__", repr(loss)),
        "strategy": {"name": strategy.name, **dataclasses.asdict(strategy)},
        "seed": seed,
        "validate_every": validate_every,
        "train": train.name,
        "n_train": len(train),
        "val": val.name,
        "n_val": len(val),
        "parameters": count_parameters(model.net),
        "model": {k: v for k, v in hyper.items() if k != "scifm_version"},
        **{k: v for k, v in (metadata or {}).items() if k != "model"},
    }
    run = RunDirectory.open(out, config)  # every process checks; only process 0 writes
    writer = distributed.is_writer()
    steps_per_epoch = len(epoch_batches(len(train), batch_size, seed, 0))
    total_steps = epochs * steps_per_epoch
    opt_state = _init_optimizer(strategy, eqx.filter(model.net, eqx.is_inexact_array))
    state = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "seconds": 0.0}
    saved_state = run.load_state((model, opt_state))
    if saved_state is not None:
        (model, opt_state), state = saved_state
    distributed.barrier("scifm-fit-loaded")  # every process has read the state it resumes from
    if writer:  # metrics written after the last saved state belong to epochs that will be redone
        run.keep_metrics(lambda m: m["epoch"] <= state["epoch"])
    else:
        run, progress = distributed.Follower(), NoProgress()
    loggers = make_loggers(log, out, config) if writer else []

    if sharding is not None and min(batch_size, len(train)) % sharding[0].num_devices:
        if not sharding[0].is_fully_addressable:
            raise UserError(
                f"the batch of {min(batch_size, len(train))} does not split over the "
                f"{sharding[0].num_devices} devices of {jax.process_count()} processes: give a "
                "--batch-size that is a multiple of the device count"
            )
        sharding = None  # the batch does not split evenly: run on one device
    if sharding is not None:
        model, opt_state = distributed.put((model, opt_state), sharding[1])
    progress.start(total_steps, state["epoch"] * steps_per_epoch + state.get("step_in_epoch", 0))
    # training losses and time since the last validation (carried over by a mid-block save)
    losses = state.pop("losses", [])
    train_seconds = state.pop("train_seconds", 0.0)
    block_start = time.perf_counter() - state.pop("block_seconds", 0.0)
    saved = time.perf_counter()
    try:
        for epoch in range(state["epoch"] + 1, epochs + 1):
            taken = state.pop("step_in_epoch", 0)  # batches of this epoch already taken (resumed)
            for k, index in enumerate(epoch_batches(len(train), batch_size, seed, epoch)):
                if k < taken:
                    continue
                tic = time.perf_counter()
                f, c, u = train.take(index)
                if sharding is not None:
                    f, c, u = distributed.put((f, c, u), sharding[0])
                at = (epoch - 1) * steps_per_epoch + k
                step_lr = np.float32(cosine_lr(lr, total_steps, at))
                model, opt_state, value = _fit_step(
                    model, opt_state, f, c, u, step_lr, loss, strategy
                )
                value = float(value)
                if not math.isfinite(value):
                    kept = (
                        f" (it keeps its state after epoch {state['epoch']})"
                        if state["epoch"]
                        else ""
                    )
                    raise DivergenceError(
                        f"the training loss became {value} in epoch {epoch}{kept}: lower the "
                        f"learning rate (now {lr:g}) or check the data"
                    )
                losses.append(value)
                train_seconds += time.perf_counter() - tic
                progress.step(value, len(index))
                if time.perf_counter() - saved >= checkpoint_every and at + 1 < total_steps:
                    # "epoch - 1 and k + 1 of its batches": at an epoch's last batch the
                    # epoch's validation, if due, is still to come
                    mid = {
                        **state,
                        "epoch": epoch - 1,
                        "step_in_epoch": k + 1,
                        "losses": losses,
                        "train_seconds": train_seconds,
                        "block_seconds": time.perf_counter() - block_start,
                    }
                    run.save_state(
                        distributed.local((model, opt_state)), mid, step=(epoch - 1) * 10**9 + k + 1
                    )
                    saved = time.perf_counter()
            if epoch % validate_every and epoch != epochs:
                continue
            val_errors = errors(distributed.local(model), val, eval_batch_size)
            record = _validation_record(
                epoch, val_errors, losses, train_seconds,
                time.perf_counter() - block_start, lr, total_steps, steps_per_epoch,
                min(batch_size, len(train)),
            )  # fmt: skip
            if select == "val_residual":
                residuals = physics_residuals(loss, distributed.local(model), val, eval_batch_size)
                record["val_residual"] = float(np.mean(residuals))
            run.log(record)
            for logger in loggers:
                logger.log(record)
            if record[select] < state["best_val"]:
                state.update(best_val=record[select], best_epoch=epoch)
                state["best_val_rel_l2"] = record["val_rel_l2"]
                run.save_model(distributed.local(model), hyper)
            state["epoch"] = epoch
            state["seconds"] += record["seconds"]
            run.save_state(distributed.local((model, opt_state)), state, step=epoch * 10**9)
            progress.evaluated("val", record["val_rel_l2"], f"epoch {epoch}")
            losses, train_seconds, block_start = [], 0.0, time.perf_counter()
            saved = time.perf_counter()
    finally:
        progress.close()
        for logger in loggers:
            logger.close()
    return run.write_result(
        {
            "best_epoch": state["best_epoch"],
            "best_val_rel_l2": state.get("best_val_rel_l2", state["best_val"]),
            **({"best_val_residual": state["best_val"]} if select == "val_residual" else {}),
            "epochs": epochs,
            "steps": total_steps,
            "train_seconds": state["seconds"],
            "parameters": count_parameters(model.net),
        }
    )
