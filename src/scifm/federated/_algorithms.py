"""Federated algorithms: what a client adds to its local training, and how the server steps.

Each round the server sends the global weights ``x`` (and its state) to the K clients; client
k takes E optimiser steps on its own data from ``x`` to ``y_k`` and sends ``Delta_k = y_k - x``;
an aggregation rule (:mod:`scifm.federated._aggregate`) makes one update ``Delta`` of them, and
the algorithm's server step turns ``Delta`` into the next ``x``:

- :class:`FedAvg` (McMahan et al. 2017): ``x + Delta``.
- :class:`FedProx` (Li et al. 2020): clients minimise ``loss + mu/2 ||w - x||^2``; server as FedAvg.
- :class:`Scaffold` (Karimireddy et al. 2020, option II): client gradients corrected by
  ``g + c - c_k``; after the local steps ``c_k' = sum_t lr_t g_t / sum_t lr_t``, the
  learning-rate-weighted mean of the client's raw stochastic gradients over the round. Under
  local SGD this *is* the paper's ``c_k - c + (x - y_k) / (E lr)`` (as ``y_k = x - sum_t lr_t
  (g_t + c - c_k)``; tested), and it stays in gradient units under Adam, where the paper's
  expression, a difference of weights over a learning rate, measures Adam's normalised steps
  instead (~1 per weight, orders of magnitude above the gradients: the corrected gradient is
  then all correction and nothing trains). The server steps ``x + eta_g Delta`` and
  ``c <- c + mean_k (c_k' - c_k)`` (every client takes part).
- :class:`FedOpt` (Reddi et al. 2021): a server optimiser on the pseudo-gradient ``-Delta``:
  :class:`FedAdam` and :class:`FedAvgM` (server momentum).

Weights are the model's trainable arrays (a PyTree); clients keep their local optimiser state
from round to round (cross-silo: each lab is always there), so FedAvg with one client *is*
centralised training, step for step.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from scifm._checks import UserError, check_non_negative, check_positive


def tree_sub(a, b):
    return jax.tree.map(lambda x, y: x - y, a, b)


def tree_zeros(a):
    return jax.tree.map(jnp.zeros_like, a)


class AbstractAlgorithm(eqx.Module):
    """A federated algorithm; the defaults are FedAvg's."""

    name: ClassVar[str]
    # model-sized tensors each way per round (SCAFFOLD also sends control variates)
    messages: ClassVar[int] = 1
    # whether after_local needs the mean of the client's raw gradients over its local steps
    tracks_gradients: ClassVar[bool] = False
    # whether the clients' local training reads the server state (a deployed server sends it)
    shares_server_state: ClassVar[bool] = False

    def init_server(self, params):
        """The server's state beside the weights."""
        return None

    def init_client(self, params):
        """One client's state beside its optimiser's."""
        return None

    def penalty(self, params, anchor):
        """A term added to the client's loss (``anchor``: the weights the round started from)."""
        return 0.0

    def correct(self, grads, client, server):
        """The gradient a client's optimiser sees."""
        return grads

    def after_local(self, client, server, delta, mean_gradient):
        """A client's state after its local steps (``delta = y_k - x``; ``mean_gradient``: the
        learning-rate-weighted mean of its raw gradients, when ``tracks_gradients``)."""
        return client

    def server_step(self, params, update, server, clients_before, clients_after):
        """The next global weights and server state from the aggregated ``update``."""
        return jax.tree.map(lambda x, d: x + d, params, update), server


class FedAvg(AbstractAlgorithm):
    """Federated averaging: the server adds the aggregated update."""

    name: ClassVar[str] = "fedavg"


class FedProx(AbstractAlgorithm):
    """FedAvg with the proximal term ``mu/2 ||w - x||^2`` in every client's loss."""

    mu: float = 0.01
    name: ClassVar[str] = "fedprox"

    def __check_init__(self):
        check_non_negative("fedprox mu", self.mu)

    def penalty(self, params, anchor):
        sq = jax.tree.map(lambda w, x: jnp.sum((w - x) ** 2), params, anchor)
        return 0.5 * self.mu * sum(jax.tree.leaves(sq))


class Scaffold(AbstractAlgorithm):
    """SCAFFOLD with control variates (option II) and server step size ``server_lr``."""

    server_lr: float = 1.0
    name: ClassVar[str] = "scaffold"
    messages: ClassVar[int] = 2
    tracks_gradients: ClassVar[bool] = True
    shares_server_state: ClassVar[bool] = True

    def __check_init__(self):
        check_positive("scaffold server_lr", self.server_lr)

    def init_server(self, params):
        return tree_zeros(params)

    def init_client(self, params):
        return tree_zeros(params)

    def correct(self, grads, client, server):
        return jax.tree.map(lambda g, c, ci: g + c - ci, grads, server, client)

    def after_local(self, client, server, delta, mean_gradient):
        return mean_gradient

    def server_step(self, params, update, server, clients_before, clients_after):
        params = jax.tree.map(lambda x, d: x + self.server_lr * d, params, update)
        server = jax.tree.map(
            lambda c, new, old: c + jnp.mean(new - old, axis=0),
            server,
            clients_after,
            clients_before,
        )
        return params, server


class FedOpt(AbstractAlgorithm):
    """A server optimiser on the pseudo-gradient ``-Delta`` (subclasses name it)."""

    name: ClassVar[str] = "fedopt"

    def transformation(self) -> optax.GradientTransformation:
        raise NotImplementedError

    def init_server(self, params):
        return self.transformation().init(params)

    def server_step(self, params, update, server, clients_before, clients_after):
        pseudo_gradient = jax.tree.map(jnp.negative, update)
        steps, server = self.transformation().update(pseudo_gradient, server, params)
        return optax.apply_updates(params, steps), server


class FedAdam(FedOpt):
    """FedOpt with Adam on the server (Reddi et al.: ``eps`` is their tau, 1e-3)."""

    lr: float = 1e-2
    b1: float = 0.9
    b2: float = 0.99
    eps: float = 1e-3
    name: ClassVar[str] = "fedadam"

    def __check_init__(self):
        check_positive("fedadam lr", self.lr)
        check_positive("fedadam eps", self.eps)
        for key, value in (("b1", self.b1), ("b2", self.b2)):
            if not 0 <= value < 1:
                raise UserError(f"fedadam {key} must be in [0, 1), got {value!r}")

    def transformation(self):
        return optax.adam(self.lr, b1=self.b1, b2=self.b2, eps=self.eps)


class FedAvgM(FedOpt):
    """FedOpt with SGD and momentum on the server (MarsFL's FedOpt: lr 0.5, momentum 0.9)."""

    lr: float = 1.0
    momentum: float = 0.9
    name: ClassVar[str] = "fedavgm"

    def __check_init__(self):
        check_positive("fedavgm lr", self.lr)
        if not 0 <= self.momentum < 1:
            raise UserError(f"fedavgm momentum must be in [0, 1), got {self.momentum!r}")

    def transformation(self):
        return optax.sgd(self.lr, momentum=self.momentum or None)


ALGORITHMS: dict[str, type[AbstractAlgorithm]] = {
    cls.name: cls for cls in (FedAvg, FedProx, Scaffold, FedAdam, FedAvgM)
}
