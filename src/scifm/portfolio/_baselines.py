"""Baseline policies: what any trading agent must beat after costs.

A policy returns target weights over ``(cash, asset_1, ..., asset_m)`` at a day's close from
the market up to that day and the current weights (see :func:`scifm.portfolio.backtest`).
- :class:`CRP`: the constant rebalanced portfolio, equal weights over the assets (or given
  ones), rebalanced every day.
- :class:`BuyAndHold`: equal weights bought on the first day, then never traded.
- :class:`BestAsset`: everything in the asset with the highest close-to-close return over the
  whole window, **in hindsight** (it reads the window's last price: an upper reference, not a
  strategy).
- :class:`OLMAR`: on-line moving average reversion (Li and Hoi, ICML 2012; OLMAR-1): predicts
  each price relative as its ``window``-day moving average over today's close and moves the
  portfolio, by the smallest step that reaches an expected relative of ``epsilon``, projected on
  the simplex.
- :class:`EG`: exponentiated gradient (Helmbold, Schapire, Singer and Warmuth 1998):
  ``b_{t+1} ~ b_t exp(eta x_t / (b_t . x_t))`` with ``x_t`` the close-to-close relatives.
The online methods hold no cash.
"""

from __future__ import annotations

import numpy as np

from scifm._checks import UserError, check_count, check_positive


def simplex_projection(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection of ``v`` on the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1
    k = np.arange(1, len(v) + 1)
    rho = np.flatnonzero(u - cumulative / k > 0)[-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0)


def _with_cash(risky: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], risky])


class CRP:
    """Constant rebalanced portfolio: ``weights`` over the assets (default equal), cash 0."""

    name, hindsight = "crp", False

    def __init__(self, weights=None):
        self.fixed = None if weights is None else np.asarray(weights, np.float64)

    def reset(self, market, first, last):
        m = len(market.assets)
        w = np.full(m, 1 / m) if self.fixed is None else self.fixed
        if w.shape != (m,) or (w < 0).any() or abs(w.sum() - 1) > 1e-9:
            raise UserError(f"crp weights must be {m} numbers >= 0 summing to 1, got {w}")
        self.target = _with_cash(w)

    def __call__(self, seen, weights):
        return self.target


class BuyAndHold:
    """Equal weights bought at the first fill, then held (no orders)."""

    name, hindsight = "buy-and-hold", False

    def reset(self, market, first, last):
        self.started = False
        self.m = len(market.assets)

    def __call__(self, seen, weights):
        if not self.started:
            self.started = True
            return _with_cash(np.full(self.m, 1 / self.m))
        return None


class BestAsset:
    """All in the asset with the best close-to-close return over the window, in hindsight."""

    name, hindsight = "best-asset", True

    def reset(self, market, first, last):
        growth = market.close[last] / market.close[first]
        self.best = int(np.argmax(growth))
        self.asset = market.assets[self.best]
        self.m = len(market.assets)

    def __call__(self, seen, weights):
        w = np.zeros(self.m + 1)
        w[1 + self.best] = 1
        return w


class OLMAR:
    """On-line moving average reversion (OLMAR-1), window 5 and epsilon 10 by default."""

    name, hindsight = "olmar", False

    def __init__(self, window: int = 5, epsilon: float = 10.0):
        check_count("olmar window", window)
        check_positive("olmar epsilon", epsilon)
        self.window, self.epsilon = window, epsilon

    def reset(self, market, first, last):
        self.m = len(market.assets)

    def __call__(self, seen, weights):
        risky = weights[1:]
        b = risky / risky.sum() if risky.sum() > 0 else np.full(self.m, 1 / self.m)
        if len(seen) < self.window:
            return _with_cash(b if risky.sum() > 0 else np.full(self.m, 1 / self.m))
        close = seen.close
        predicted = close[-self.window :].mean(axis=0) / close[-1]
        deviation = predicted - predicted.mean()
        norm = float(deviation @ deviation)
        step = 0.0 if norm == 0 else max(0.0, (self.epsilon - b @ predicted) / norm)
        return _with_cash(simplex_projection(b + step * deviation))


class EG:
    """Exponentiated gradient with learning rate ``eta`` (0.05, as Helmbold et al.)."""

    name, hindsight = "eg", False

    def __init__(self, eta: float = 0.05):
        check_positive("eg eta", eta)
        self.eta = eta

    def reset(self, market, first, last):
        self.b = np.full(len(market.assets), 1 / len(market.assets))
        self.calls = 0

    def __call__(self, seen, weights):
        if self.calls and len(seen) >= 2:
            x = seen.close[-1] / seen.close[-2]
            b = self.b * np.exp(self.eta * x / (self.b @ x))
            self.b = b / b.sum()
        self.calls += 1
        return _with_cash(self.b)


POLICIES = {cls.name: cls for cls in (CRP, BuyAndHold, BestAsset, OLMAR, EG)}
