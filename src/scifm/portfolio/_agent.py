"""The DDPG trading agent of Yu et al. (arXiv 1901.08740): networks, environment, training.

**State** at day t: for each asset the last ``window`` closes, highs and lows divided by day
t's close (``(m, window, 3)``), and the weights held (cash first, after the day's drift).
**Action**: target weights, a softmax over cash and the m assets (long only).
**Environment** (the paper's close-to-close formulation): price relatives
``u_{t+1} = close_{t+1} / close_t`` (cash 1); rebalancing from the drifted weights ``w'`` to
``w`` costs ``c sum_{i>0} |w'_i - w_i|`` of wealth, so the reward is
``ln((1 - cost) u_{t+1} . w)``, scaled by ``reward_scale`` (1e3, as the paper), and the weights
drift to ``u * w / (u . w)``. (The paper writes the cost factor where the remaining fraction is
meant.) The back-test of a trained agent runs in the engine (next-open fills).
**Networks**: a bidirectional LSTM over the window, shared by the assets, then dense
256-128-64-32 leaky-ReLU layers with dropout (0.5 during training); the critic sees the action
beside the state. **DDPG** (Lillicrap et al. 2016): target networks updated softly (``tau``),
critic Adam at ``critic_lr`` (1e-3), actor 100x slower, replay of ``capacity`` transitions
(1,000; ``prioritised``: proportional prioritised replay, Schaul et al. 2016, priorities
``(|TD error| + 1e-3)^alpha``, importance weights ``(N P(i))^-beta`` over their maximum;
the paper's), exploration by parameter-space noise (Gaussian, ``sigma`` 0.01 on the actor's
weights). The discount ``gamma`` (0.99) and ``tau`` (0.001) are not in the paper: Lillicrap's.
The update step (critic, actor, targets) is one jitted function.
**BCM** (``modules=("bcm",)``): the actor's loss adds ``bcm_weight`` (0.1) times the binary
cross-entropy between its weights and the one-step greedy expert's in hindsight
(:func:`scifm.portfolio.greedy_expert` of the next day's relatives from the weights held).
**DAM** (``modules=("dam",)``): before the first episode, per-asset GANs
(:mod:`scifm.portfolio._dam`, ``dam_steps`` steps on windows of ``dam_window`` days of the
training days) are trained and saved (``dam.eqx``, their checks in ``dam.json``); every episode
then goes on for ``synthetic_days`` (42: two months) generated days after its real ones,
prices continuing from the last real close (with the IPM, its predictor runs on into them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scifm._checks import UserError, check_count, check_non_negative, check_positive
from scifm._progress import NoProgress
from scifm._runs import RunDirectory
from scifm.portfolio._expert import greedy_expert
from scifm.portfolio._market import Market

BUILT_MODULES = ("bcm", "ipm", "dam")


@dataclass(frozen=True)
class AgentConfig:
    """The agent's settings (the paper's where it gives them)."""

    window: int = 10
    hidden: int = 32
    layers: tuple[int, ...] = (256, 128, 64, 32)
    dropout: float = 0.5
    gamma: float = 0.99
    tau: float = 0.001
    critic_lr: float = 1e-3
    actor_lr: float = 1e-5
    batch: int = 64
    capacity: int = 1000
    sigma: float = 0.01
    reward_scale: float = 1e3
    modules: tuple[str, ...] = ()  # "bcm": behaviour cloning; "ipm": the DyBM's prediction;
    # "dam": GAN-made days after each episode
    bcm_weight: float = 0.1
    cost: float = 0.007  # (20 + 50) bps, as a fraction of the value traded
    episode: int = 650
    episodes: int = 200
    dam_steps: int = 400
    dam_window: int = 32
    synthetic_days: int = 42
    prioritised: bool = False
    priority_alpha: float = 0.6
    priority_beta: float = 0.4

    def __post_init__(self):
        for key in ("window", "hidden", "batch", "capacity", "episode", "episodes", "dam_steps",
                    "dam_window", "synthetic_days"):  # fmt: skip
            check_count(key, getattr(self, key))
        for key in ("critic_lr", "actor_lr", "reward_scale"):
            check_positive(key, getattr(self, key))
        for key in ("sigma", "cost", "tau"):
            check_non_negative(key, getattr(self, key))
        unknown = sorted(set(self.modules) - set(BUILT_MODULES))
        if unknown:
            raise UserError(
                f"unknown module {unknown[0]!r}; modules: {', '.join(BUILT_MODULES)}"
            )
        check_non_negative("bcm_weight", self.bcm_weight)
        check_non_negative("priority_alpha", self.priority_alpha)
        check_non_negative("priority_beta", self.priority_beta)
        if not 0 <= self.dropout < 1 or not 0 <= self.gamma < 1:
            raise UserError(f"dropout and gamma must be in [0, 1), got {self.dropout}, {self.gamma}")


def state_size(m: int, config: AgentConfig) -> int:
    """The state vector beside the price window: the weights held (m + 1), and with the IPM
    its prediction of the next day's close, high and low changes (3 m, in percent)."""
    return m + 1 + (3 * m if "ipm" in config.modules else 0)


def ipm_inputs(market: Market) -> np.ndarray:
    """The IPM's observations: each day's changes of close, high and low from the day before
    (fractions; day 0: zeros), ``(T, 3 m)``."""
    x = np.zeros((len(market), 3 * len(market.assets)))
    for j, field in enumerate(("close", "high", "low")):
        values = getattr(market, field)
        x[1:, j::3] = values[1:] / values[:-1] - 1
    return x


class Predictor:
    """The IPM run forward in time: after seeing day t it predicts day t + 1 (in percent)."""

    def __init__(self, m: int, seed: int):
        from scifm.portfolio._ipm import DyBM

        self.model, self.seen = DyBM(3 * m, seed=seed), 0

    def upto(self, market: Market, t: int) -> np.ndarray:
        """Learn from the days up to ``t`` not yet seen; the prediction for day ``t + 1``."""
        if t + 1 > self.seen:
            lo = max(self.seen - 1, 0)  # the day before the first new one, for its changes
            x = ipm_inputs(market._rows(slice(lo, t + 1)))
            for row in x[self.seen - lo :]:
                self.model.update(row)
            self.seen = t + 1
        return 100 * self.model.predict()


def features(market: Market, t: int, window: int) -> np.ndarray:
    """The price window of day t: ``(m, window, 3)`` closes, highs, lows over day t's close."""
    rows = slice(t - window + 1, t + 1)
    stacked = np.stack([market.close[rows], market.high[rows], market.low[rows]], axis=-1)
    return (stacked / market.close[t][None, :, None]).transpose(1, 0, 2).astype(np.float32)


class Extractor(eqx.Module):
    """A bidirectional LSTM over each asset's window (shared by the assets)."""

    forward: eqx.nn.LSTMCell
    backward: eqx.nn.LSTMCell

    def __init__(self, hidden: int, *, key):
        a, b = jax.random.split(key)
        self.forward = eqx.nn.LSTMCell(3, hidden, key=a)
        self.backward = eqx.nn.LSTMCell(3, hidden, key=b)

    def _run(self, cell, xs):
        zeros = jnp.zeros(cell.hidden_size)

        def step(carry, x):
            carry = cell(x, carry)
            return carry, None

        (h, _), _ = jax.lax.scan(step, (zeros, zeros), xs)
        return h

    def __call__(self, window):  # (m, W, 3) -> (m * 2 hidden,)
        one = lambda xs: jnp.concatenate([self._run(self.forward, xs), self._run(self.backward, xs[::-1])])  # noqa: E731
        return jax.vmap(one)(window).reshape(-1)


class Head(eqx.Module):
    """Dense leaky-ReLU layers with dropout, then a linear output."""

    layers: list
    out: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, size: int, widths: Sequence[int], out: int, dropout: float, *, key):
        keys = jax.random.split(key, len(widths) + 1)
        sizes = [size, *widths]
        self.layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes, sizes[1:], keys, strict=False)]
        self.out = eqx.nn.Linear(sizes[-1], out, key=keys[-1])
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, x, key=None):
        inference = key is None
        for i, layer in enumerate(self.layers):
            x = jax.nn.leaky_relu(layer(x))
            k = None if inference else jax.random.fold_in(key, i)
            x = self.dropout(x, key=k, inference=inference)
        return self.out(x)


class Actor(eqx.Module):
    extractor: Extractor
    head: Head

    def __init__(self, m: int, config: AgentConfig, *, key):
        a, b = jax.random.split(key)
        self.extractor = Extractor(config.hidden, key=a)
        self.head = Head(m * 2 * config.hidden + state_size(m, config), config.layers, m + 1, config.dropout, key=b)

    def __call__(self, window, weights, key=None):
        x = jnp.concatenate([self.extractor(window), weights])
        return jax.nn.softmax(self.head(x, key))


class Critic(eqx.Module):
    extractor: Extractor
    head: Head

    def __init__(self, m: int, config: AgentConfig, *, key):
        a, b = jax.random.split(key)
        self.extractor = Extractor(config.hidden, key=a)
        self.head = Head(m * 2 * config.hidden + state_size(m, config) + m + 1, config.layers, 1, config.dropout, key=b)

    def __call__(self, window, weights, action, key=None):
        x = jnp.concatenate([self.extractor(window), weights, action])
        return self.head(x, key)[0]


def step_reward(u: np.ndarray, drifted: np.ndarray, action: np.ndarray, cost: float):
    """The environment's step: reward ``ln((1 - cost) u . w)`` and the next drifted weights."""
    paid = cost * np.abs(drifted[1:] - action[1:]).sum()
    growth = float(u @ action)
    return float(np.log((1 - paid) * growth)), u * action / growth


def float32(tree):
    """``tree`` with its float arrays in float32 whatever JAX's default (x64 on makes float64
    weights; the checkpoints are float32)."""
    return jax.tree.map(lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x, tree)


class Agent(eqx.Module):
    """Actor, critic and their targets."""

    actor: Actor
    critic: Critic
    actor_target: Actor
    critic_target: Critic

    @classmethod
    def create(cls, m: int, config: AgentConfig, *, key):
        a, c = jax.random.split(key)
        actor, critic = Actor(m, config, key=a), Critic(m, config, key=c)
        actor, critic = float32(actor), float32(critic)
        return cls(actor, critic, actor, critic)


def _optimizers(config: AgentConfig):
    return optax.adam(config.actor_lr), optax.adam(config.critic_lr)


@eqx.filter_jit
def update(agent: Agent, opt_states, batch, key, config: AgentConfig):
    """One DDPG update on a batch ``(window, weights, action, reward, next_window,
    next_weights, expert, importance)``: the critic toward ``r + gamma Q'(s', mu'(s'))`` (its
    squared errors weighted by ``importance``), the actor up the critic's gradient, the targets
    a ``tau`` step toward the networks. Also returns the TD errors (new priorities)."""
    actor_tx, critic_tx = _optimizers(config)
    window, weights, action, reward, next_window, next_weights, expert, importance = batch
    n = reward.shape[0]
    keys = jax.random.split(key, 2 * n).reshape(2, n)
    next_action = jax.vmap(agent.actor_target)(next_window, next_weights)
    target = reward + config.gamma * jax.vmap(agent.critic_target)(next_window, next_weights, next_action)
    target = jax.lax.stop_gradient(target)

    def critic_loss(critic):
        q = jax.vmap(critic)(window, weights, action, keys[0])
        return jnp.mean(importance * (q - target) ** 2), q - target

    (closs, td), cgrad = eqx.filter_value_and_grad(critic_loss, has_aux=True)(agent.critic)
    updates, critic_state = critic_tx.update(cgrad, opt_states[1], agent.critic)
    critic = eqx.apply_updates(agent.critic, updates)

    def actor_loss(actor):
        chosen = jax.vmap(actor)(window, weights, keys[1])
        loss = -jnp.mean(jax.vmap(critic)(window, weights, chosen))
        if "bcm" in config.modules:  # binary cross-entropy toward the greedy expert's weights
            p = jnp.clip(chosen, 1e-7, 1 - 1e-7)
            bce = -jnp.sum(expert * jnp.log(p) + (1 - expert) * jnp.log(1 - p), axis=-1)
            loss = loss + config.bcm_weight * jnp.mean(bce)
        return loss

    aloss, agrad = eqx.filter_value_and_grad(actor_loss)(agent.actor)
    updates, actor_state = actor_tx.update(agrad, opt_states[0], agent.actor)
    actor = eqx.apply_updates(agent.actor, updates)
    actor_target = _soft(actor, agent.actor_target, config.tau)
    critic_target = _soft(critic, agent.critic_target, config.tau)
    return Agent(actor, critic, actor_target, critic_target), (actor_state, critic_state), closs, td


def _soft(new, old, tau):
    """``tau new + (1 - tau) old``, weight by weight."""
    arrays_new, static = eqx.partition(new, eqx.is_inexact_array)
    arrays_old = eqx.filter(old, eqx.is_inexact_array)
    mixed = jax.tree.map(lambda a, b: tau * a + (1 - tau) * b, arrays_new, arrays_old)
    return eqx.combine(mixed, static)


@eqx.filter_jit
def _act(actor: Actor, window, weights, key, sigma):
    """The action of the actor with parameter-space noise (``sigma`` times a normal on every
    weight)."""
    arrays, static = eqx.partition(actor, eqx.is_inexact_array)
    leaves, tree = jax.tree.flatten(arrays)
    keys = jax.random.split(key, len(leaves))
    noisy = [x + sigma * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=True)]
    return eqx.combine(jax.tree.unflatten(tree, noisy), static)(window, weights)


@eqx.filter_jit
def act(actor: Actor, window, weights):
    """The trained actor's deterministic action (no noise, no dropout)."""
    return actor(window, weights)


def train_agent(
    market: Market,
    out,
    *,
    config: AgentConfig = AgentConfig(),
    start: str | None = None,
    end: str | None = None,
    seed: int = 0,
    save_every: int = 10,
    progress=NoProgress(),
) -> dict:
    """Train the DDPG agent on ``market`` between ``start`` and ``end``: ``episodes`` episodes of
    ``episode`` steps from random start days (the first ``window - 1`` days only feed the
    state). Resumable: the run directory ``out`` holds the networks, optimiser states, replay
    buffer and random state every ``save_every`` episodes; a rerun continues from there with
    the same result on the CPU.

    Returns:
        result.json: the last episodes' mean reward, time, settings.
    """
    import time

    first, last = market.between(start, end)
    m, w = len(market.assets), config.window
    lo, hi = first + w - 1, last - 1  # decision days with a full window and a next day
    if hi - lo < 1:
        raise UserError(
            f"the training window holds {last - first + 1} days; the agent needs more than "
            f"its window of {w} (+1)"
        )
    steps = min(config.episode, hi - lo)
    run = RunDirectory.open(out, {
        "kind": "portfolio-agent", "assets": list(market.assets), "data": market.name,
        "start": str(market.dates[first]), "end": str(market.dates[last]), "seed": seed,
        "config": asdict(config),
    })  # fmt: skip
    key = jax.random.key(seed)
    agent = Agent.create(m, config, key=jax.random.fold_in(key, 0))
    actor_tx, critic_tx = _optimizers(config)
    params = lambda net: eqx.filter(net, eqx.is_inexact_array)  # noqa: E731
    opt_states = (actor_tx.init(params(agent.actor)), critic_tx.init(params(agent.critic)))
    cap = config.capacity
    buffer = {
        "window": np.zeros((cap, m, w, 3), np.float32),
        "weights": np.zeros((cap, state_size(m, config)), np.float32),
        "action": np.zeros((cap, m + 1), np.float32), "reward": np.zeros(cap, np.float32),
        "next_window": np.zeros((cap, m, w, 3), np.float32),
        "next_weights": np.zeros((cap, state_size(m, config)), np.float32),
        "expert": np.zeros((cap, m + 1), np.float32), "priority": np.zeros(cap, np.float64),
    }  # fmt: skip
    state = {"episode": 0, "filled": 0, "position": 0, "seconds": 0.0}
    saved = run.load_state((agent, opt_states, buffer))
    if saved is not None:
        (agent, opt_states, buffer), state = saved
        buffer = {k: np.asarray(v) for k, v in buffer.items()}
    run.keep_metrics(lambda row: row["episode"] <= state["episode"])
    predicted = np.zeros((len(market), 0), np.float32)  # the IPM's, made day by day
    if "ipm" in config.modules:
        ipm = Predictor(m, seed)
        predicted = np.stack([ipm.upto(market, t) for t in range(last + 1)]).astype(np.float32)

    dam = _dam(run, market, first, last, config, seed) if "dam" in config.modules else None
    extra = config.synthetic_days if dam is not None else 0

    progress.start(config.episodes, state["episode"])
    try:
        for episode in range(state["episode"] + 1, config.episodes + 1):
            tic = time.perf_counter()
            rng = np.random.default_rng([seed, episode])
            t0 = int(rng.integers(lo, hi - steps + 2))
            weights = np.zeros(m + 1, np.float32)
            weights[0] = 1.0
            ekey = jax.random.fold_in(key, episode)
            days, ipm_days = market, None  # the episode's market: real, then synthetic days
            if dam is not None:  # after the last real day the episode sees, t0 + steps
                days = dam.continue_market(market.until(t0 + steps), jax.random.fold_in(DAM_STREAM, episode), extra)
                ipm_days = Predictor(m, seed) if "ipm" in config.modules else None

            synthetic_from = t0 + steps + 1 if dam is not None else len(market)
            state_at = functools.partial(_state, predicted=predicted, synthetic_from=synthetic_from, predictor=ipm_days, days=days)

            rewards, closses = [], []
            for s in range(steps + extra):
                t = t0 + s
                window = features(days, t, w)
                here = state_at(weights, t)
                u_next = np.concatenate([[1.0], days.close[t + 1] / days.close[t]])
                action = np.asarray(_act(agent.actor, window, here, jax.random.fold_in(ekey, 2 * s), config.sigma), np.float64)
                action = action / action.sum()
                reward, drifted = step_reward(u_next, weights.astype(np.float64), action, config.cost)
                i = state["position"]
                buffer["window"][i], buffer["weights"][i], buffer["action"][i] = window, here, action
                buffer["reward"][i] = reward * config.reward_scale
                buffer["next_window"][i] = features(days, t + 1, w)
                buffer["next_weights"][i] = state_at(drifted, t + 1)
                buffer["expert"][i] = greedy_expert(u_next, weights, config.cost)
                buffer["priority"][i] = buffer["priority"].max(initial=1.0)  # new: the highest
                state["position"] = (i + 1) % cap
                state["filled"] = min(state["filled"] + 1, cap)
                weights = drifted.astype(np.float32)
                rewards.append(reward)
                if state["filled"] >= config.batch:
                    pick, importance = _sample(rng, buffer["priority"][: state["filled"]], config)
                    batch = tuple(jnp.asarray(buffer[k][pick]) for k in ("window", "weights", "action", "reward", "next_window", "next_weights", "expert"))
                    agent, opt_states, closs, td = update(agent, opt_states, (*batch, jnp.asarray(importance)), jax.random.fold_in(ekey, 2 * s + 1), config)
                    if config.prioritised:
                        buffer["priority"][pick] = (np.abs(np.asarray(td, np.float64)) + 1e-3) ** config.priority_alpha
                    closses.append(float(closs))
            state["seconds"] += time.perf_counter() - tic
            row = {
                "episode": episode, "start": str(market.dates[t0]),
                "log_return": float(np.sum(rewards[:steps])),  # the real days'
                **({"synthetic_log_return": float(np.sum(rewards[steps:]))} if extra else {}),
                "critic_loss": float(np.mean(closses)) if closses else None,
                "seconds": state["seconds"],
            }  # fmt: skip
            run.log(row)
            state["episode"] = episode
            if episode % save_every == 0 or episode == config.episodes:
                run.save_state((agent, opt_states, buffer), state, step=episode)
            progress.step(-row["log_return"], steps)
    finally:
        progress.close()
    run.save_model(agent, {
        "kind": "portfolio-agent", "assets": list(market.assets), "config": asdict(config),
        "seed": seed,
    })  # fmt: skip
    last_rows = run.metrics()[-10:]
    return run.write_result({
        "episodes": config.episodes,
        "mean_log_return_last_10": float(np.mean([r["log_return"] for r in last_rows])),
        "seconds": state["seconds"],
    })  # fmt: skip


def _sample(rng, priority: np.ndarray, config: AgentConfig) -> tuple[np.ndarray, np.ndarray]:
    """A batch of replay indices and their importance weights: uniform (weights 1), or in
    proportion to ``priority`` with weights ``(N P(i))^-beta`` over their maximum."""
    n = len(priority)
    if not config.prioritised:
        return rng.integers(0, n, config.batch), np.ones(config.batch, np.float32)
    chance = priority / priority.sum()
    pick = rng.choice(n, config.batch, p=chance)
    weight = (n * chance[pick]) ** -config.priority_beta
    return pick, (weight / weight.max()).astype(np.float32)


def _state(weights, t, *, predicted, synthetic_from, predictor, days) -> np.ndarray:
    """The state beside the price window at day t: the weights, and the IPM's prediction
    (made ahead for real days; for an episode's synthetic days by ``predictor`` running on)."""
    if predicted.shape[1] == 0:
        return weights.astype(np.float32)
    ahead = predicted[t] if t < synthetic_from else predictor.upto(days, t)
    return np.concatenate([weights, ahead]).astype(np.float32)


DAM_STREAM = jax.random.key(2**31 - 1)  # the synthetic days' random stream (episode folded in)


def _dam(run: RunDirectory, market: Market, first: int, last: int, config: AgentConfig, seed: int):
    """The agent's GANs: trained on its training days and saved in the run directory once
    (``dam.eqx``, and ``dam.json``: their MMD during training and the held-out check), read
    back when the run resumes."""
    import json

    from scifm._io import atomic_write_bytes, atomic_write_json
    from scifm.portfolio._dam import DAMConfig, dam_like, train_dam

    settings = DAMConfig(window=config.dam_window, steps=config.dam_steps)
    path = run.path / "dam.eqx"
    if path.exists() and (run.path / "dam.json").exists():
        return eqx.tree_deserialise_leaves(path, dam_like(market, len(market.assets), settings))
    dam, record = train_dam(market, first, last, settings, seed=seed)
    run._create()
    atomic_write_bytes(path, lambda fh: eqx.tree_serialise_leaves(fh, dam))
    atomic_write_json(run.path / "dam.json", json.loads(json.dumps(record)))
    return dam


def load_agent(run) -> tuple[Agent, AgentConfig, tuple[str, ...], int]:
    """A trained agent from its run directory (``checkpoint.eqx`` and ``model.json``), with its
    settings, assets and training seed (which also seeds its IPM).

    Raises:
        ValueError: not a finished agent run.
    """
    import json
    from pathlib import Path

    path = Path(run)
    description = path / "model.json"
    if not description.is_file() or not (path / "checkpoint.eqx").is_file():
        raise UserError(f"{path} holds no trained agent (scifm portfolio train writes one)")
    about = json.loads(description.read_text())
    if about.get("kind") != "portfolio-agent":
        raise UserError(f"{path} holds a {about.get('kind', 'model')}, not a portfolio agent")
    settings = dict(about["config"])
    settings["layers"] = tuple(settings["layers"])
    settings["modules"] = tuple(settings.get("modules", ()))
    config = AgentConfig(**settings)
    like = Agent.create(len(about["assets"]), config, key=jax.random.key(0))
    agent = eqx.tree_deserialise_leaves(path / "checkpoint.eqx", like)
    return agent, config, tuple(about["assets"]), int(about.get("seed", 0))


class AgentPolicy:
    """A trained agent as a back-test policy: its actor's deterministic weights from the
    market's last ``window`` days and the current weights (equal weights until it has seen a
    full window)."""

    hindsight = False

    def __init__(self, run):
        self.agent, self.config, self.assets, self.seed = load_agent(run)
        self.name = f"agent:{run}"

    def reset(self, market, first, last):
        self.predictor = Predictor(len(self.assets), self.seed) if "ipm" in self.config.modules else None
        if tuple(market.assets) != self.assets:
            raise UserError(
                f"the agent trades {', '.join(self.assets)}; the data holds "
                f"{', '.join(market.assets)} (choose them with --assets)"
            )

    def __call__(self, seen, weights):
        w = self.config.window
        if len(seen) < w:
            m = len(self.assets)
            return np.concatenate([[0.0], np.full(m, 1 / m)])
        window = features(seen, len(seen) - 1, w)
        state = weights
        if self.predictor is not None:
            state = np.concatenate([weights, self.predictor.upto(seen, len(seen) - 1)])
        action = np.asarray(act(self.agent.actor, window, state.astype(np.float32)), np.float64)
        return action / action.sum()
