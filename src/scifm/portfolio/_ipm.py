"""The infused prediction module's predictor: an online Gaussian dynamic Boltzmann machine
with an echo-state bias (Dasgupta and Osogami, AAAI 2017; the IPM of Yu et al.).

Each step it predicts the next vector ``x^[t]`` (the paper: next-step % changes of close, high
and low for all assets) as the mean of a Gaussian,

    mu^[t] = b + sum_{delta=1}^{d-1} W_delta x^[t-delta] + sum_k U_k alpha_k^[t-1] + V psi^[t-1],

where ``alpha_k^[t] = lambda_k alpha_k^[t-1] + x^[t-d+1]`` are eligibility traces (decay rates
``lambda_k``, the paper's 0.1, 0.2, 0.5, 0.8) of what has passed the delay ``d`` (3), and
``psi^[t] = tanh(rho A psi^[t-1] + B x^[t])`` is a fixed random echo-state network (100 units,
spectral radius ``rho`` 0.9) whose state biases the prediction. After seeing ``x^[t]`` every
weight takes one RMSProp step (learning rate 1e-3) up the Gaussian log-likelihood, whose
gradient is ``(x^[t] - mu^[t])`` times each input: O(1) work per step, learning for ever
(during training and the test). The paper removes 0.01 input noise with a Savitzky-Golay
filter (window 5, order 3) before predicting; :func:`savgol_causal` is its causal form.
"""

from __future__ import annotations

import numpy as np

from scifm._checks import check_count, check_positive


class DyBM:
    """Online Gaussian DyBM predictor of ``n``-vectors (see the module docstring)."""

    def __init__(
        self, n: int, *, delay: int = 3, decays=(0.1, 0.2, 0.5, 0.8), esn_units: int = 100,
        spectral_radius: float = 0.9, lr: float = 1e-3, rho: float = 0.9, seed: int = 0,
    ):  # fmt: skip
        check_count("n", n)
        check_count("delay", delay, minimum=2)
        check_positive("lr", lr)
        rng = np.random.default_rng(seed)
        self.n, self.delay, self.decays = n, delay, np.asarray(decays, np.float64)
        a = rng.normal(size=(esn_units, esn_units))
        self.A = spectral_radius * a / np.max(np.abs(np.linalg.eigvals(a)))
        self.B = rng.normal(scale=1 / np.sqrt(n), size=(esn_units, n))
        k = len(self.decays)
        self.inputs = (delay - 1) * n + k * n + esn_units + 1  # lags, traces, echo state, bias
        self.W = np.zeros((n, self.inputs))
        self.square = np.zeros_like(self.W)  # RMSProp's running mean of squared gradients
        self.lr, self.rho = lr, rho
        self.history = np.zeros((delay, n))  # x^[t-1], ..., x^[t-d] (newest first)
        self.traces = np.zeros((k, n))
        self.echo = np.zeros(esn_units)

    def _features(self) -> np.ndarray:
        lags = self.history[: self.delay - 1].reshape(-1)
        return np.concatenate([lags, self.traces.reshape(-1), self.echo, [1.0]])

    def predict(self) -> np.ndarray:
        """The mean of the next vector given everything seen so far."""
        return self.W @ self._features()

    def update(self, x) -> np.ndarray:
        """Learn from the vector ``x`` that came (one RMSProp step), then take it in; returns
        the prediction that was made for it."""
        x = np.asarray(x, np.float64)
        features = self._features()
        predicted = self.W @ features
        gradient = np.outer(x - predicted, features)  # of the log-likelihood (unit variance)
        self.square = self.rho * self.square + (1 - self.rho) * gradient**2
        self.W += self.lr * gradient / (np.sqrt(self.square) + 1e-8)
        self.history = np.vstack([x[None, :], self.history[:-1]])
        self.traces = self.decays[:, None] * self.traces + self.history[self.delay - 1][None, :]
        self.echo = np.tanh(self.A @ self.echo + self.B @ x)
        return predicted


def savgol_causal(values, window: int = 5, order: int = 3) -> np.ndarray:
    """The Savitzky-Golay smoothing of the last ``window`` values at the newest one (a causal
    filter: a least-squares polynomial of ``order`` through the window, read at its end)."""
    values = np.asarray(values, np.float64)
    if len(values) < window:
        return values[-1]
    t = np.arange(-window + 1, 1, dtype=np.float64)
    basis = np.vander(t, order + 1)
    coefficients = np.linalg.lstsq(basis, values[-window:], rcond=None)[0]
    return coefficients[-1]  # the polynomial at t = 0
