"""Performance metrics of a wealth series, with their conventions stated.

From the wealth at ``n`` consecutive closes, the ``n - 1`` simple daily returns
``r_t = V_t / V_{t-1} - 1``; a year is 252 trading days; the risk-free rate is an annual rate
``risk_free`` (default 0), as a daily rate ``(1 + risk_free)^(1/252) - 1``.
- annual return: ``(V_end / V_start)^(252 / (n - 1)) - 1`` (geometric);
- annual volatility: the sample standard deviation of ``r`` (ddof 1) times ``sqrt(252)``;
- Sharpe: ``mean(r - rf) / std(r) * sqrt(252)``;
- Sortino: ``mean(r - rf) / sqrt(mean(min(r - rf, 0)^2)) * sqrt(252)`` (the downside
  deviation over all days, target the risk-free rate);
- maximum drawdown: ``max_t (1 - V_t / max_{s <= t} V_s)`` (a positive fraction);
- VaR and CVaR 95%: the historical 5% quantile of daily returns and the mean of the returns at
  or below it, as positive losses;
- turnover (:meth:`Backtest.metrics`): the mean over fills of the value traded divided by the
  portfolio's value at that open (buys and sells both counted; 2.0 = selling everything and
  buying something else).
"""

from __future__ import annotations

import numpy as np

DAYS = 252


def metrics(wealth, *, risk_free: float = 0.0) -> dict:
    """The metrics of the module docstring from a wealth series."""
    wealth = np.asarray(wealth, np.float64)
    r = wealth[1:] / wealth[:-1] - 1
    excess = r - ((1 + risk_free) ** (1 / DAYS) - 1)
    std = float(np.std(r, ddof=1)) if len(r) > 1 else float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0) ** 2))) if len(r) else float("nan")
    peak = np.maximum.accumulate(wealth)
    var = float(np.quantile(r, 0.05)) if len(r) else float("nan")

    def ratio(num, den):
        return float(num / den * np.sqrt(DAYS)) if den > 0 else float("nan")

    out = {
        "annual_return": float((wealth[-1] / wealth[0]) ** (DAYS / len(r)) - 1),
        "annual_volatility": std * np.sqrt(DAYS),
        "sharpe": ratio(np.mean(excess), std),
        "sortino": ratio(np.mean(excess), downside),
        "max_drawdown": float(np.max(1 - wealth / peak)),
        "var_95": -var,
        "cvar_95": -float(np.mean(r[r <= var])) if len(r) else float("nan"),
        "final_value": float(wealth[-1]),
        "days": len(wealth),
        "risk_free": risk_free,
    }
    return out
