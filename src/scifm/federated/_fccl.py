"""FCCL+ for field regression: collaboration of heterogeneous operators on public inputs.

FCCL+ (Huang et al., TPAMI 2023) lets clients with *different* models learn from each other
without sharing data or weights: each round, every model predicts on a batch of public,
unlabelled data, the predictions are compared with their consensus, and each client then
trains locally with distillation against forgetting what the collaboration taught it. The
original is for classification (logits); for fields there are no logits, so (REFERENCES.md):

- **Public data is inputs only**: sources and coefficients drawn from broad priors (the
  study's public tasks); their solutions are never read (they are NaN in memory, so a bug that
  read them would diverge, not silently cheat).
- **A shared basis.** Each model's prediction ``(N, K, H, W)`` on the shared grid is projected
  on the lowest ``modes`` Fourier modes per axis (orthonormal, real and imaginary parts): a
  vector ``z`` per sample that every architecture produces. The consensus ``zbar`` is the mean
  over clients (detached); its principal directions (``rank`` of them, by SVD of the centred
  batch) are the basis the correlation is measured in, so the consensus' own coordinates are
  uncorrelated and the correlation target is the identity: with plain Fourier coefficients
  the identity target would be wrong (they are correlated).
- **Cross-correlation** ``C = a^T b / N`` of the batch-standardised coordinates ``a`` of a model
  and ``b`` of the consensus: ``sum_i (1 - C_ii)^2 + off_diagonal * sum_{i != j} C_ij^2``
  (FCCL's form; its code pushes off-diagonals toward -1 for classes, here toward 0).
- **Amplitude**: standardisation removes the scale and mean, so
  ``mean ||z - zbar||^2 / mean ||zbar - mean(zbar)||^2`` restores them.
- **Instance similarity**: the batch-by-batch cosine similarities of the coordinates,
  diagonal removed, as softmax rows with ``temperature``; ``KL(consensus || model)``.
- **Distillation on public inputs** replaces FCCL's non-target distillation on private data
  (no classes, no non-target logits): during local training, ``distillation`` times the
  squared relative L2 distance between the model and its post-collaboration copy on a public
  batch (squared: the plain norm's gradient is 0/0 where the student equals its teacher, which
  is where every round's local training starts).

Each client keeps its own model, normaliser and Adam state (its final model is written to
``RUN/models/CLIENT``, a checkpoint ``scifm train --init`` takes). A round is ``local_steps``
on the client's data (distilled toward its model as the previous round's collaboration left
it), then ``collab_steps`` on the collaboration loss. Local training comes first so that the
consensus is made of models that have seen their data: collaborating first, on freshly
initialised models, makes the consensus noise, and its amplitude term (relative to the
consensus' own spread, tiny at initialisation) collapses every model toward zero output
(measured: relative errors stuck at 1.0). Messages are
the public predictions' projections (``N x D`` floats each way), not weights.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from scifm._checks import UserError, check_count, check_non_negative, check_positive
from scifm._progress import NoProgress, RunProgress
from scifm._runs import DivergenceError, RunDirectory
from scifm.data import FieldSet
from scifm.federated._simulate import client_batches, describe
from scifm.models import OperatorModel, count_parameters
from scifm.train import cosine_lr, errors, make_optimizer, relative_l2, save


class FCCLLoss(eqx.Module):
    """The weights and settings of FCCL+'s terms (a weight of 0 ablates a term).

    The weights default to 0.1, not FCCL's 1: on fed-fccl (three labs, three systems, fno-64k
    and fno-1m) weights of 1 pulled every model to the consensus and kept the local errors near
    1.0 (0.90 mean own error against 0.55 alone, 10 rounds); at 0.1 the models keep most of
    their own accuracy and gain on the other labs' distributions (README, fed-fccl)."""

    correlation: float = 0.1
    off_diagonal: float = 0.0051
    amplitude: float = 0.1
    similarity: float = 0.1
    temperature: float = 0.1
    distillation: float = 0.1
    modes: int = 8
    rank: int = 16
    name = "fccl"

    def __check_init__(self):
        for key in ("correlation", "off_diagonal", "amplitude", "similarity", "distillation"):
            check_non_negative(f"fccl {key}", getattr(self, key))
        check_positive("fccl temperature", self.temperature)
        check_count("fccl modes", self.modes)
        check_count("fccl rank", self.rank)

    @property
    def collaborates(self) -> bool:
        return bool(self.correlation or self.amplitude or self.similarity)


def features(pred: jax.Array, modes: int) -> jax.Array:
    """Predictions ``(N, K, H, W)`` as real vectors ``(N, D)``: the orthonormal 2-D Fourier
    coefficients of rows ``[0, m) U [H - m, H)`` and columns ``[0, m)``, real and imaginary."""
    h = pred.shape[-2]
    spectrum = jnp.fft.rfft2(pred, norm="ortho")
    kept = jnp.concatenate([spectrum[..., :modes, :modes], spectrum[..., h - modes :, :modes]], -2)
    flat = kept.reshape(pred.shape[0], -1)
    return jnp.concatenate([flat.real, flat.imag], axis=1)


def consensus_basis(zbar: jax.Array, rank: int) -> jax.Array:
    """The consensus' ``rank`` principal directions ``(D, r)`` (right singular vectors of the
    centred batch), along which its coordinates are uncorrelated."""
    centred = zbar - jnp.mean(zbar, axis=0)
    _, _, vt = jnp.linalg.svd(centred, full_matrices=False)
    return vt[: min(rank, vt.shape[0])].T


def _standardise(x):
    x = x - jnp.mean(x, axis=0)
    return x / (jnp.std(x, axis=0) + 1e-6)


def collaboration_loss(loss: FCCLLoss, z, zbar, basis):
    """FCCL+'s collaboration objective of one model's projections ``z`` against the
    consensus ``zbar`` (see the module docstring)."""
    centre = jnp.mean(zbar, axis=0)
    a, b = (z - centre) @ basis, (zbar - centre) @ basis
    total = 0.0
    if loss.correlation:
        c = _standardise(a).T @ _standardise(b) / a.shape[0]
        diagonal = jnp.diag(c)
        off = jnp.sum(c**2) - jnp.sum(diagonal**2)
        total += loss.correlation * (jnp.sum((1 - diagonal) ** 2) + loss.off_diagonal * off)
    if loss.amplitude:
        scale = jnp.mean(jnp.sum((zbar - centre) ** 2, axis=1)) + 1e-12
        total += loss.amplitude * jnp.mean(jnp.sum((z - zbar) ** 2, axis=1)) / scale
    if loss.similarity:
        n = a.shape[0]
        mask = jnp.eye(n, dtype=bool)

        def logits(x):
            unit = x / (jnp.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
            return jnp.where(mask, -1e9, unit @ unit.T / loss.temperature)

        target = jax.nn.softmax(logits(b), axis=1)
        log_model = jax.nn.log_softmax(logits(a), axis=1)
        kl = jnp.sum(jnp.where(mask, 0.0, target * (jnp.log(target + 1e-30) - log_model)), 1)
        total += loss.similarity * jnp.mean(kl)
    return total


@eqx.filter_jit
def _predict_features(model, f, c, modes: int):
    return features(jax.vmap(model)(f, c), modes)


def _adam_step(model, opt_state, objective, lr):
    """One Adam step of ``objective(net)`` on ``model.net``: the model, state and value."""
    value, grads = eqx.filter_value_and_grad(objective)(model.net)
    params = eqx.filter(model.net, eqx.is_inexact_array)
    updates, opt_state = make_optimizer().update(grads, opt_state, params, learning_rate=lr)
    net = eqx.apply_updates(model.net, updates)
    return eqx.tree_at(lambda m: m.net, model, net), opt_state, value


@eqx.filter_jit
def _collaborate(model, opt_state, f, c, zbar, basis, lr, loss: FCCLLoss):
    def objective(net):
        m = eqx.tree_at(lambda m: m.net, model, net)
        return collaboration_loss(loss, features(jax.vmap(m)(f, c), loss.modes), zbar, basis)

    return _adam_step(model, opt_state, objective, lr)


def _relative_squared(pred, target):
    """Mean over samples of ``||pred - target||^2 / ||target||^2``: smooth where the two agree
    (the relative L2 norm's gradient is 0/0 there, and the student starts equal to its teacher)."""
    axes = tuple(range(1, pred.ndim))
    return jnp.mean(jnp.sum((pred - target) ** 2, axes) / (jnp.sum(target**2, axes) + 1e-12))


@eqx.filter_jit
def _local(model, opt_state, f, c, u, fp, cp, teacher, lr, loss: FCCLLoss):
    target = jax.lax.stop_gradient(jax.vmap(teacher)(fp, cp)) if loss.distillation else None

    def objective(net):
        m = eqx.tree_at(lambda m: m.net, model, net)
        value = relative_l2(jax.vmap(m)(f, c), u)
        if loss.distillation:
            value += loss.distillation * _relative_squared(jax.vmap(m)(fp, cp), target)
        return value

    return _adam_step(model, opt_state, objective, lr)


@eqx.filter_jit
def _init_optimizer(net):
    return make_optimizer().init(eqx.filter(net, eqx.is_inexact_array))


def public_inputs(public: FieldSet) -> FieldSet:
    """``public`` with its solutions replaced by NaN: only inputs are public."""
    f, c, u = public.take(np.arange(len(public)))
    return FieldSet(
        f, c, np.full_like(u, np.nan), public.name, public.input_names, public.output_names
    )


def fccl(
    models: Sequence[OperatorModel],
    clients: Sequence[FieldSet],
    public: FieldSet,
    out: str | Path,
    *,
    names: Sequence[str],
    loss: FCCLLoss = FCCLLoss(),
    rounds: int = 20,
    local_steps: int = 10,
    collab_steps: int = 1,
    batch_size: int = 16,
    public_batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    evaluate: Mapping[str, FieldSet] | None = None,
    eval_every: int = 1,
    metadata: dict | None = None,
    progress: RunProgress = NoProgress(),
) -> dict:
    """FCCL+ over ``clients`` with one model each (architectures may differ); resumable.

    ``public`` supplies unlabelled inputs (its solutions are never read). Returns the result:
    every client's model's error on every test set of ``evaluate``, and the bytes each client
    sends per round (its public projections).

    Raises:
        ValueError: bad arguments (a model per client, matching grids, enough samples).
    """
    evaluate = dict(evaluate or {})
    names = list(names)
    if not (len(models) == len(clients) == len(names)) or not clients:
        raise UserError("fccl needs one model and one name per client")
    for key, value in (
        ("rounds", rounds), ("local_steps", local_steps), ("batch_size", batch_size),
        ("public_batch", public_batch), ("eval_every", eval_every),
    ):  # fmt: skip
        check_count(key, value)
    check_count("collab_steps", collab_steps, minimum=0)
    check_positive("lr", lr)
    grid = tuple(clients[0].inputs.shape[2:])
    for name, model, data in zip(names, models, clients, strict=True):
        model.check_channels(data.input_names, data.output_names, f"client {name}")
        model.check_channels(public.input_names, public.output_names, "the public inputs")
        if tuple(data.inputs.shape[2:]) != grid or tuple(public.inputs.shape[2:]) != grid:
            raise UserError(f"client {name} and the public inputs must share one grid {grid}")
        if len(data) < batch_size:
            raise UserError(f"client {name} holds {len(data)} samples, fewer than {batch_size}")
    if len(public) < public_batch:
        raise UserError(f"public inputs: {len(public)} samples, fewer than {public_batch}")
    if min(loss.modes * 2, grid[1] // 2 + 1) < loss.modes or 2 * loss.modes > grid[0]:
        raise UserError(f"fccl modes {loss.modes} need a grid of at least {2 * loss.modes}")
    public = public_inputs(public)
    config = {
        "fccl": describe(loss) | {"name": "fccl"},
        "rounds": rounds, "local_steps": local_steps, "collab_steps": collab_steps,
        "batch_size": batch_size, "public_batch": public_batch, "lr": lr, "seed": seed,
        "clients": {
            n: {"data": d.name, "n": len(d), "parameters": count_parameters(m.net),
                "width": m.net.width, "modes": m.net.modes}
            for n, d, m in zip(names, clients, models, strict=True)
        },
        "public": {"data": public.name, "n": len(public)},
        "evaluate": {n: {"data": d.name, "n": len(d)} for n, d in evaluate.items()},
        "eval_every": eval_every,
        **(metadata or {}),
    }  # fmt: skip
    run = RunDirectory.open(out, config)
    models = list(models)
    # two Adam states per client: the collaboration's gradients (of another loss, at another
    # scale) in the local optimiser's moments would shrink its data steps to nothing
    opt_states = [_init_optimizer(m.net) for m in models]
    collab_states = [_init_optimizer(m.net) for m in models]
    state = {"round": 0, "seconds": 0.0}
    saved = run.load_state((models, opt_states, collab_states))
    if saved is not None:
        (models, opt_states, collab_states), state = saved
    run.keep_metrics(lambda row: row["round"] <= state["round"])
    k = len(clients)
    total = rounds * local_steps
    sent = 0
    progress.start(rounds, state["round"])
    try:
        for r in range(state["round"] + 1, rounds + 1):
            tic = time.perf_counter()
            rng = np.random.default_rng([seed, r])
            first = (r - 1) * local_steps
            lr_round = np.float32(cosine_lr(lr, total, first))
            losses = {"collaboration": [], "local": []}
            # local training first, distilled toward the models as the last round's
            # collaboration left them (in round 1 there is none: no distillation)
            teachers = list(models)
            local_loss = loss if r > 1 else dataclasses.replace(loss, distillation=0.0)
            for i, data in enumerate(clients):
                index = client_batches(len(data), batch_size, seed + i, first, local_steps)
                for e in range(local_steps):
                    f, c, u = data.take(index[e])
                    pick = np.sort(
                        rng.choice(len(public), min(batch_size, len(public)), replace=False)
                    )
                    fp, cp, _ = public.take(pick)
                    step_lr = np.float32(cosine_lr(lr, total, first + e))
                    models[i], opt_states[i], value = _local(
                        models[i], opt_states[i], f, c, u, fp, cp, teachers[i], step_lr, local_loss
                    )
                    losses["local"].append(float(value))
            if loss.collaborates and collab_steps:
                for _ in range(collab_steps):
                    index = np.sort(rng.choice(len(public), public_batch, replace=False))
                    fp, cp, _ = public.take(index)
                    z = [_predict_features(m, fp, cp, loss.modes) for m in models]
                    zbar = jnp.mean(jnp.stack(z), axis=0)
                    basis = consensus_basis(zbar, loss.rank)
                    sent = int(zbar.size) * 4
                    for i in range(k):
                        models[i], collab_states[i], value = _collaborate(
                            models[i], collab_states[i], fp, cp, zbar, basis, lr_round, loss
                        )
                        losses["collaboration"].append(float(value))
            every = [v for vs in losses.values() for v in vs]
            if not np.all(np.isfinite(every)):
                raise DivergenceError(f"an FCCL+ loss became {every} in round {r}: lower lr")
            row = {
                "round": r,
                "collaboration_loss": float(np.mean(losses["collaboration"]))
                if losses["collaboration"]
                else None,
                "local_loss": float(np.mean(losses["local"])),
                "bytes_sent": r * sent * max(collab_steps, 0),
            }
            if evaluate and (r % eval_every == 0 or r == rounds):
                row["test"] = {
                    n: {t: float(np.mean(errors(m, d))) for t, d in evaluate.items()}
                    for n, m in zip(names, models, strict=True)
                }
            state["seconds"] += time.perf_counter() - tic
            row["seconds"] = state["seconds"]
            run.log(row)
            state["round"] = r
            run.save_state((models, opt_states, collab_states), state, step=r)
            progress.step(row["local_loss"], k * local_steps * batch_size)
    finally:
        progress.close()
    for name, model in zip(names, models, strict=True):  # each client's model, for fine-tuning
        save(run.path / "models" / name, model, **(metadata or {}).get("model", {}))
    last = run.metrics()[-1]
    return run.write_result(
        {
            "rounds": rounds,
            "test": last.get("test", {}),
            "bytes_sent_per_client": last["bytes_sent"],
            "seconds": state["seconds"],
        }
    )
