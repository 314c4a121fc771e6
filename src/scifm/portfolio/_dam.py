"""The data augmentation module (DAM) of Yu et al.: per-asset recurrent GANs with an MMD
penalty, whose synthetic days are appended to the agent's training episodes.

**What is generated.** A day is ``substeps`` finer steps: the generator (an LSTM over latent
noise) emits one log return per finer step; a day's close is the end of its path, its high
and low the path's highest and lowest level within the day, so ``high >= close >= low`` holds
by construction (the paper generates hourly changes and downsamples them to daily bars the
same way). Real and synthetic days are compared as the agent sees them: per day
``(log c_t / c_{t-1}, log h_t / c_t, log l_t / c_t)``. For closes-only data (high = low =
close, as skfolio's stocks) ``substeps`` is 1 and high = low = close, as in the data.
Synthetic days open at their close (as closes-only data); the agent's state never uses opens.

**Training** (one GAN per asset, all assets' GANs trained at once, vmapped): discriminator (an
LSTM over a ``window`` of days' features, standardised by the real data's scale) and generator
with the non-saturating GAN losses; the generator's loss adds ``mmd_weight`` times the
unbiased MMD^2 between the real and synthetic batches (Gaussian kernel on whole windows,
bandwidth the median pairwise distance of the pooled batch, Gretton et al. 2012). Adam at
``lr`` for both. Deviations from the paper (its data were hourly bars): windows of daily bars
(32 days, not 95 hours), ``substeps`` 4 finer steps a day.

**Checks** (:func:`two_sample`): MMD^2 between held-out real windows and synthetic ones, with
a permutation test's p-value (non-overlapping windows; few of them, so the test has little
power: a high p-value is weak evidence of a good generator).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scifm._checks import check_count, check_non_negative, check_positive
from scifm.portfolio._agent import float32
from scifm.portfolio._market import Market


@dataclass(frozen=True)
class DAMConfig:
    """The GANs' settings (the paper's latent 8 and hidden 32; see the module docstring)."""

    window: int = 32
    substeps: int = 4
    latent: int = 8
    hidden: int = 32
    batch: int = 64
    steps: int = 400
    lr: float = 1e-3
    mmd_weight: float = 1.0
    holdout: float = 0.2  # the last fraction of the training days, for the check only

    def __post_init__(self):
        for key in ("window", "substeps", "latent", "hidden", "batch", "steps"):
            check_count(f"dam {key}", getattr(self, key))
        check_positive("dam lr", self.lr)
        check_non_negative("dam mmd_weight", self.mmd_weight)
        if not 0 <= self.holdout < 1:
            raise ValueError(f"dam holdout must be in [0, 1), got {self.holdout}")


def day_features(close, high, low) -> np.ndarray:
    """``(T - 1, m, 3)``: each day's log close change, log high and log low over its close."""
    close, high, low = (np.asarray(a, np.float64) for a in (close, high, low))
    return np.stack(
        [np.log(close[1:] / close[:-1]), np.log(high[1:] / close[1:]), np.log(low[1:] / close[1:])],
        axis=-1,
    )


def closes_only(market: Market) -> bool:
    return bool(np.all(market.high == market.close) and np.all(market.low == market.close))


class Generator(eqx.Module):
    """Latent noise ``(days * substeps, latent)`` -> days' features ``(days, 3)``."""

    cell: eqx.nn.LSTMCell
    out: eqx.nn.Linear
    substeps: int = eqx.field(static=True)

    def __init__(self, config: DAMConfig, *, key):
        a, b = jax.random.split(key)
        self.cell = eqx.nn.LSTMCell(config.latent, config.hidden, key=a)
        self.out = eqx.nn.Linear(config.hidden, 1, key=b)
        self.substeps = config.substeps

    def returns(self, z, scale):
        """The finer steps' log returns (``scale``: a day's typical move / sqrt(substeps))."""
        zeros = jnp.zeros(self.cell.hidden_size)

        def step(carry, x):
            carry = self.cell(x, carry)
            return carry, self.out(carry[0])[0]

        _, r = jax.lax.scan(step, (zeros, zeros), z)
        return scale * r

    def __call__(self, z, scale):
        r = self.returns(z, scale).reshape(-1, self.substeps)
        level = jnp.cumsum(r, axis=1)  # log price within each day over the day before's close
        close = level[:, -1]
        return jnp.stack([close, level.max(1) - close, level.min(1) - close], axis=-1)


class Discriminator(eqx.Module):
    """Standardised features of a window of days ``(days, 3)`` -> a logit (real)."""

    cell: eqx.nn.LSTMCell
    out: eqx.nn.Linear

    def __init__(self, config: DAMConfig, *, key):
        a, b = jax.random.split(key)
        self.cell = eqx.nn.LSTMCell(3, config.hidden, key=a)
        self.out = eqx.nn.Linear(config.hidden, 1, key=b)

    def __call__(self, x):
        zeros = jnp.zeros(self.cell.hidden_size)
        (h, _), _ = jax.lax.scan(lambda c, v: (self.cell(v, c), None), (zeros, zeros), x)
        return self.out(h)[0]


def median_bandwidth(x, y):
    """The median pairwise distance of the pooled samples (rows), a common kernel width."""
    z = jnp.concatenate([x, y])
    d2 = jnp.sum((z[:, None] - z[None]) ** 2, -1)
    n = z.shape[0]
    off = d2[jnp.triu_indices(n, 1)]
    return jnp.sqrt(jnp.median(off)) + 1e-12


def mmd2(x, y, bandwidth):
    """The unbiased estimate of MMD^2 between samples ``x`` and ``y`` (rows), Gaussian kernel
    ``exp(-|a - b|^2 / (2 bandwidth^2))``."""
    kernel = lambda a, b: jnp.exp(-jnp.sum((a[:, None] - b[None]) ** 2, -1) / (2 * bandwidth**2))  # noqa: E731
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    sxx = (kxx.sum() - jnp.trace(kxx)) / (n * (n - 1))
    syy = (kyy.sum() - jnp.trace(kyy)) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def two_sample(real: np.ndarray, fake: np.ndarray, *, permutations: int = 500, seed: int = 0):
    """MMD^2 between two sets of windows ``(n, days, 3)`` and its permutation test's p-value
    (the share of relabellings with an MMD^2 at least as large, counting the observed one)."""
    x, y = (jnp.asarray(a.reshape(len(a), -1), jnp.float64 if jax.config.x64_enabled else jnp.float32) for a in (real, fake))
    bandwidth = median_bandwidth(x, y)
    observed = float(mmd2(x, y, bandwidth))
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(len(x) + len(y)) for _ in range(permutations)])
    stats = _permuted(jnp.concatenate([x, y]), jnp.asarray(orders), bandwidth, len(x))
    p = (1 + int(np.sum(np.asarray(stats) >= observed))) / (permutations + 1)
    return observed, p


@functools.partial(jax.jit, static_argnums=3)
def _permuted(pooled, orders, bandwidth, n: int):
    """MMD^2 of the pooled samples split by each order: the first ``n`` against the rest."""
    return jax.vmap(lambda idx: mmd2(pooled[idx[:n]], pooled[idx[n:]], bandwidth))(orders)


class DAM(eqx.Module):
    """The trained GANs of ``m`` assets (stacked), with the real data's scales."""

    generators: Generator  # each array with a leading asset axis
    scale: jax.Array  # (m,) a day's standard deviation of log close changes / sqrt(substeps)
    config: DAMConfig = eqx.field(static=True)

    def sample(self, key, days: int) -> np.ndarray:
        """``days`` synthetic days of every asset: features ``(days, m, 3)``."""
        m = self.scale.shape[0]
        z = jax.random.normal(key, (m, days * self.config.substeps, self.config.latent))
        out = _generate(self.generators, z, self.scale)
        return np.asarray(out, np.float64).transpose(1, 0, 2)

    def continue_market(self, market: Market, key, days: int) -> Market:
        """``market`` followed by ``days`` synthetic business days (prices from its last
        close; opens at the close)."""
        f = self.sample(key, days)
        close = market.close[-1] * np.exp(np.cumsum(f[..., 0], axis=0))
        high, low = close * np.exp(f[..., 1]), close * np.exp(f[..., 2])
        dates = np.busday_offset(market.dates[-1], np.arange(1, days + 1), roll="forward")
        cat = lambda a, b: np.concatenate([a, b])  # noqa: E731
        return Market(
            cat(market.dates, dates.astype("datetime64[D]")), market.assets,
            cat(market.open, close), cat(market.high, np.maximum(high, close)),
            cat(market.low, np.minimum(low, close)), cat(market.close, close),
            name=market.name,
        )  # fmt: skip


def _stacked(cls, config: DAMConfig, key, m: int):
    """``m`` independently initialised networks, stacked (float32 whatever JAX's default)."""
    made = eqx.filter_vmap(lambda k: cls(config, key=k))(jax.random.split(key, m))
    return float32(made)


def dam_like(market: Market, m: int, config: DAMConfig) -> DAM:
    """A DAM of the structure :func:`train_dam` makes for ``market`` (to read one back):
    one finer step a day for closes-only data."""
    if closes_only(market):
        config = DAMConfig(**{**config.__dict__, "substeps": 1})
    return DAM(_stacked(Generator, config, jax.random.key(0), m), jnp.zeros(m, jnp.float32), config)


@eqx.filter_jit
def _generate(generators, z, scale):
    return eqx.filter_vmap(lambda g, zz, s: g(zz, s))(generators, z, scale)


def _windows(features: np.ndarray, window: int, stride: int) -> np.ndarray:
    """``(n, window, m, 3)`` windows of days' features, every ``stride`` days."""
    starts = range(0, len(features) - window + 1, stride)
    return np.stack([features[s : s + window] for s in starts])


def _optimizer(config: DAMConfig):
    return optax.adam(config.lr, b1=0.5)


def _made(gen, z, r, config: DAMConfig):
    """A batch of the generator's days, standardised (``r``: the close's std over each's)."""
    unit = 1 / np.sqrt(config.substeps)
    return jax.vmap(lambda zz: gen(zz, unit) * r)(z)


def _per_asset(gen, disc, g_opt, d_opt, batch, z1, z2, r, config: DAMConfig):
    """One step of one asset's GAN: the discriminator, then the generator (with the MMD^2)."""
    tx, b = _optimizer(config), batch.shape[0]
    fake = jax.lax.stop_gradient(_made(gen, z1, r, config))

    def d_loss(d):
        return jnp.mean(jax.nn.softplus(-jax.vmap(d)(batch))) + jnp.mean(jax.nn.softplus(jax.vmap(d)(fake)))

    dl, dg = eqx.filter_value_and_grad(d_loss)(disc)
    upd, d_opt = tx.update(dg, d_opt, disc)
    disc = eqx.apply_updates(disc, upd)

    def g_loss(g):
        y = _made(g, z2, r, config)
        adv = jnp.mean(jax.nn.softplus(-jax.vmap(disc)(y)))
        x, y = batch.reshape(b, -1), y.reshape(b, -1)
        return adv + config.mmd_weight * mmd2(x, y, jax.lax.stop_gradient(median_bandwidth(x, y)))

    gl, gg = eqx.filter_value_and_grad(g_loss)(gen)
    upd, g_opt = tx.update(gg, g_opt, gen)
    return eqx.apply_updates(gen, upd), disc, g_opt, d_opt, dl, gl


@eqx.filter_jit
def _train_step(gens, discs, g_state, d_state, key, real, ratio, config: DAMConfig):
    """One step of every asset's GAN (vmapped), on a batch of ``real`` windows each."""
    m, n_real = real.shape[:2]
    k1, k2, k3 = jax.random.split(key, 3)
    idx = jax.random.randint(k1, (m, config.batch), 0, n_real)
    batch = jnp.take_along_axis(real, idx[:, :, None, None], axis=1)
    shape = (m, config.batch, config.window * config.substeps, config.latent)
    z1, z2 = jax.random.normal(k2, shape), jax.random.normal(k3, shape)
    step = lambda *a: _per_asset(*a, config)  # noqa: E731
    return eqx.filter_vmap(step)(gens, discs, g_state, d_state, batch, z1, z2, ratio)


@eqx.filter_jit
def _held_in_mmd(gens, key, fixed, ratio, config: DAMConfig):
    """Each asset's MMD^2 between the ``fixed`` real windows and as many generated ones."""
    m, n = fixed.shape[:2]
    z = jax.random.normal(key, (m, n, config.window * config.substeps, config.latent))

    def per_asset(gen, z, x, r):
        x, y = x.reshape(n, -1), _made(gen, z, r, config).reshape(n, -1)
        return mmd2(x, y, median_bandwidth(x, y))

    return eqx.filter_vmap(per_asset)(gens, z, fixed, ratio)


def train_dam(
    market: Market, first: int, last: int, config: DAMConfig = DAMConfig(), *, seed: int = 0,
    progress=None,
) -> tuple[DAM, dict]:
    """Train the GANs on days ``first .. last`` of ``market`` (the last ``holdout`` of them
    held out for :func:`two_sample`). Returns the DAM and its record: MMD^2 on a fixed
    held-in batch every tenth of the steps (``mmd``), and the two-sample check on the held-out
    windows (``heldout_mmd2``, ``p_value``; ``baseline_mmd2``: the same for Gaussian days of
    the data's mean and standard deviation, what the GAN should beat).
    """
    config = dam_like(market, len(market.assets), config).config
    features = day_features(*(getattr(market, f)[first : last + 1] for f in ("close", "high", "low")))
    split = int(round(len(features) * (1 - config.holdout)))
    train, held = features[:split], features[split:]
    w = config.window
    if len(train) < w + 1:
        raise ValueError(f"the DAM needs more than {w} training days, got {len(train)}")
    real = jnp.asarray(_windows(train, w, 1).transpose(2, 0, 1, 3), jnp.float32)  # (m, n, w, 3)
    std = np.maximum(train.reshape(-1, train.shape[1], 3).std(0), 1e-6)  # (m, 3)
    norm = jnp.asarray(std, jnp.float32)[:, None, None, :]
    real = real / norm
    scale = jnp.asarray(std[:, 0] / np.sqrt(config.substeps), jnp.float32)
    m = real.shape[0]
    key = jax.random.key(seed)
    gkey, dkey, key = jax.random.split(key, 3)
    gens = _stacked(Generator, config, gkey, m)
    discs = _stacked(Discriminator, config, dkey, m)
    tx = _optimizer(config)
    params = lambda t: eqx.filter(t, eqx.is_inexact_array)  # noqa: E731
    g_state = eqx.filter_vmap(lambda g: tx.init(params(g)))(gens)  # one state per asset
    d_state = eqx.filter_vmap(lambda d: tx.init(params(d)))(discs)
    # inside training the generator's days come out standardised (each feature over its real
    # standard deviation), as the discriminator and the penalty see the real ones
    ratio = jnp.asarray(std[:, 0][:, None] / std, jnp.float32)  # (m, 3): the close's std / each's
    n_fixed = min(256, real.shape[1])
    fixed = real[:, np.random.default_rng(seed).choice(real.shape[1], n_fixed, replace=False)]

    record, every = {"mmd": []}, max(config.steps // 10, 1)
    check_key = jax.random.key(seed + 1)
    for step in range(config.steps + 1):
        if step % every == 0 or step == config.steps:
            record["mmd"].append((step, float(jnp.mean(_held_in_mmd(gens, check_key, fixed, ratio, config)))))
        if step == config.steps:
            break
        key, sub = jax.random.split(key)
        gens, discs, g_state, d_state, dl, gl = _train_step(gens, discs, g_state, d_state, sub, real, ratio, config)
        if progress is not None:
            progress(step, float(jnp.mean(gl)))
    dam = DAM(gens, scale, config)
    if len(held) >= 2 * w:
        heldout = _windows(held, w, w)  # non-overlapping
        made = dam.sample(jax.random.key(seed + 2), len(heldout) * w).reshape(len(heldout), w, m, 3)
        gauss = np.random.default_rng(seed).normal(train.mean(0), train.std(0), made.shape)
        gauss[..., 1:] = 0 if closes_only(market) else gauss[..., 1:]
        s = std[None, None]
        results = [two_sample(heldout[:, :, i] / s[..., i, :], made[:, :, i] / s[..., i, :], seed=seed) for i in range(m)]
        base = [two_sample(heldout[:, :, i] / s[..., i, :], gauss[:, :, i] / s[..., i, :], seed=seed) for i in range(m)]
        record["heldout_windows"] = len(heldout)
        record["heldout_mmd2"] = [r[0] for r in results]
        record["p_value"] = [r[1] for r in results]
        record["baseline_mmd2"] = [r[0] for r in base]
        record["baseline_p_value"] = [r[1] for r in base]
    return dam, record
