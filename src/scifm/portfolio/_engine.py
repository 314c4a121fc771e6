"""The back-testing and execution engine.

Timeline of a back-test over the window of days ``s .. e`` (indices into the market):
- At day t's close (``s <= t < e``) the policy sees the market up to t (:meth:`Market.until`)
  and the portfolio's current weights, and returns target weights ``w`` over
  ``(cash, asset_1, ..., asset_m)`` (long only, summing to 1).
- The orders fill at day t+1's **open**: the portfolio is valued at the open (``V``), and
  rebalanced to ``w`` of what remains after costs. Costs are proportional to the value traded
  in each risky asset, ``(fee_bps + slippage_bps) / 1e4`` of it (buys and sells alike; the cash
  leg is free), so the value after trading ``V'`` solves ``V' = V - c sum_i |w_i V' - v_i|``
  (``v_i``: the asset's value before trading; a contraction, solved to 1e-12). With
  ``whole_shares`` each target is rounded down to whole shares (and one more share sold while
  the cash would be negative).
- Wealth is marked at every close ``s .. e``; weights drift with prices between fills.

Nothing a policy returns at day t depends on a price after t: the policy never receives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scifm._checks import UserError, check_non_negative, check_positive
from scifm.portfolio._market import Market


@dataclass(frozen=True)
class Costs:
    """Proportional trading costs in basis points of the value traded (the paper's 20 + 50)."""

    fee_bps: float = 20.0
    slippage_bps: float = 50.0

    def __post_init__(self):
        check_non_negative("fee_bps", self.fee_bps)
        check_non_negative("slippage_bps", self.slippage_bps)
        if self.rate >= 1:
            raise UserError(f"costs of {self.fee_bps + self.slippage_bps} bps would take all of a trade")

    @property
    def rate(self) -> float:
        return (self.fee_bps + self.slippage_bps) / 1e4


@dataclass
class Backtest:
    """What a back-test did, day by day (``n = e - s + 1`` closes, ``n - 1`` fills)."""

    dates: np.ndarray  # (n,) the closes s..e
    assets: tuple[str, ...]
    wealth: np.ndarray  # (n,) portfolio value at each close
    weights: np.ndarray  # (n, m + 1) weights at each close (cash first), after the day's drift
    targets: np.ndarray  # (n - 1, m + 1) the policy's decisions at closes s..e-1 (hold: weights)
    traded: np.ndarray  # (n - 1,) value traded at each fill (sum over assets of |buy or sell|)
    costs: np.ndarray  # (n - 1,) costs paid at each fill
    before: np.ndarray  # (n - 1,) portfolio value at each fill's open, before trading
    policy: str = ""
    hindsight: bool = False
    settings: dict = field(default_factory=dict)

    def metrics(self, risk_free: float = 0.0) -> dict:
        """:func:`scifm.portfolio.metrics` of this back-test, net of costs."""
        from scifm.portfolio._metrics import metrics

        out = metrics(self.wealth, risk_free=risk_free)
        out["turnover"] = float(np.mean(self.traded / self.before))
        out["costs_paid"] = float(self.costs.sum())
        return out


def _check_weights(w, m: int, name: str, date) -> np.ndarray:
    w = np.asarray(w, np.float64)
    if w.shape != (m + 1,) or not np.all(np.isfinite(w)) or (w < -1e-12).any():
        raise UserError(
            f"policy {name} returned {w!r} on {date}; expected {m + 1} finite weights >= 0 "
            "(cash first)"
        )
    total = w.sum()
    if abs(total - 1) > 1e-6:
        raise UserError(f"policy {name}'s weights on {date} sum to {total}, not 1")
    return np.clip(w, 0, None) / total


def _rebalance(cash, shares, price, target, rate, whole_shares):
    """Trade at ``price`` to the ``target`` weights; returns (cash, shares, traded, cost, value
    before trading)."""
    values = shares * price
    v = cash + values.sum()
    after = v
    for _ in range(200):  # V' = V - c sum |w_i V' - v_i|: a contraction (factor <= c < 1)
        new = v - rate * np.abs(target[1:] * after - values).sum()
        if abs(new - after) <= 1e-12 * max(v, 1.0):
            after = new
            break
        after = new
    wanted = target[1:] * after / price
    if whole_shares:
        wanted = np.floor(wanted + 1e-9)
    traded = np.abs(wanted - shares) * price
    cost = rate * traded.sum()
    cash = v - (wanted * price).sum() - cost
    while whole_shares and cash < -1e-9 * v:  # rounding's extra costs: sell one more share
        i = int(np.argmax(wanted * price))
        wanted[i] -= 1
        traded = np.abs(wanted - shares) * price
        cost = rate * traded.sum()
        cash = v - (wanted * price).sum() - cost
    return cash, wanted, traded.sum(), cost, v


def backtest(
    market: Market,
    policy,
    *,
    start: str | None = None,
    end: str | None = None,
    costs: Costs = Costs(),
    initial: float = 500_000.0,
    whole_shares: bool = False,
    progress=None,
) -> Backtest:
    """Run ``policy`` over ``market`` between ``start`` and ``end`` (dates, inclusive; default
    the whole market); see the module docstring.

    ``policy`` has ``name``, ``hindsight`` (True for policies that use the whole window, as the
    best asset in hindsight), ``reset(market, first, last)`` (called once, before the first
    decision: ``market`` is the whole market only for hindsight policies, else the market up
    to the first decision) and ``__call__(seen, weights) -> targets`` (``seen``: the market up
    to the decision's day; ``weights``: the current weights, cash first; ``None``: hold, no
    orders, recorded as the current weights).

    Raises:
        ValueError: dates outside the data, a window of fewer than two days, negative costs,
            a policy that returns weights off the simplex.
    """
    check_positive("initial", initial)
    first, last = market.between(start, end)
    m = len(market.assets)
    policy.reset(market if policy.hindsight else market.until(first), first, last)
    cash, shares = float(initial), np.zeros(m)
    n = last - first + 1
    wealth, weights = np.empty(n), np.empty((n, m + 1))
    targets, traded, paid, before = (np.empty((n - 1, m + 1)), *np.empty((3, n - 1)))

    def mark(k, t):
        values = shares * market.close[t]
        wealth[k] = cash + values.sum()
        weights[k] = np.concatenate([[cash], values]) / wealth[k]

    mark(0, first)
    for k, t in enumerate(range(first, last)):
        decision = policy(market.until(t), weights[k].copy())
        if decision is None:  # hold: no orders
            targets[k] = weights[k]
            traded[k] = paid[k] = 0.0
            before[k] = cash + (shares * market.open[t + 1]).sum()
        else:
            targets[k] = _check_weights(decision, m, policy.name, market.dates[t])
            cash, shares, traded[k], paid[k], before[k] = _rebalance(
                cash, shares, market.open[t + 1], targets[k], costs.rate, whole_shares
            )
        mark(k + 1, t + 1)
        if progress is not None:
            progress(1)
    return Backtest(
        market.dates[first : last + 1], market.assets, wealth, weights, targets, traded, paid,
        before,
        policy=policy.name, hindsight=policy.hindsight,
        settings={"fee_bps": costs.fee_bps, "slippage_bps": costs.slippage_bps,
                  "initial": initial, "whole_shares": whole_shares},
    )  # fmt: skip


def walk_forward(
    market: Market,
    policies: dict,
    windows: list[tuple[str, str]],
    costs: list[Costs],
    *,
    initial: float = 500_000.0,
    risk_free: float = 0.0,
) -> list[dict]:
    """Back-test every policy (name -> a function returning a fresh policy) on every window
    ``(start, end)`` at every cost level: one row of metrics per combination, with ``policy``,
    ``start``, ``end``, ``fee_bps``, ``slippage_bps`` and ``hindsight``."""
    rows = []
    for start, end in windows:
        for cost in costs:
            for name, make in policies.items():
                result = backtest(market, make(), start=start, end=end, costs=cost, initial=initial)
                rows.append({
                    "policy": name, "hindsight": result.hindsight,
                    "start": str(result.dates[0]), "end": str(result.dates[-1]),
                    "fee_bps": cost.fee_bps, "slippage_bps": cost.slippage_bps,
                    **result.metrics(risk_free),
                })  # fmt: skip
    return rows
