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
        "crp", "--policy", help="crp, buy-and-hold, best-asset (hindsight), olmar, eg, or a "
        "trained agent's run directory (scifm portfolio train).",
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
    from pathlib import Path

    from scifm import portfolio

    if policy in portfolio.POLICIES:
        chosen = portfolio.POLICIES[policy]()
    elif Path(policy).is_dir():
        chosen = portfolio.AgentPolicy(policy)
    else:
        raise UserError(
            f"unknown policy {policy!r}; policies: {', '.join(portfolio.POLICIES)}, or a "
            "trained agent's run directory"
        )
    costs = portfolio.Costs(fee_bps, slippage_bps)
    market = _market(data, assets)
    market.between(start, end)  # refuse a bad window before anything is written
    result = portfolio.backtest(
        market, chosen, start=start, end=end, costs=costs,
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


def _market(data: list[str], assets: str | None):
    from scifm import portfolio

    if len(data) == 1 and data[0] in portfolio.DATASETS:
        market = portfolio.load_dataset(data[0])
    else:
        market = portfolio.load_csv(data)
    if assets:
        market = market.select([a.strip() for a in assets.split(",") if a.strip()])
    return market


@app.command()
def train(
    data: list[str] = typer.Option(  # noqa: B008 - typer reads it
        ..., "--data", help="A built-in dataset or CSV files/folders (as backtest)."
    ),
    out: str = typer.Option(..., "--out", help="Run directory; an unfinished run is resumed."),
    start: str = typer.Option(None, "--start", help="First training day [default: the data's]."),
    end: str = typer.Option(None, "--end", help="Last training day [default: the data's]."),
    assets: str = typer.Option(None, "--assets", help="Comma-separated assets [default: all]."),
    episodes: int = typer.Option(200, min=1, help="Training episodes (the paper's 200)."),
    episode: int = typer.Option(650, min=2, help="Steps per episode (the paper's 650)."),
    fee_bps: float = typer.Option(20.0, "--fee-bps", help="Fee in the reward, basis points."),
    slippage_bps: float = typer.Option(50.0, "--slippage-bps", help="Slippage in the reward."),
    modules: str = typer.Option(
        "", "--modules", help="Modules, comma-separated: ipm (the DyBM's prediction in the "
        "state), bcm (behaviour cloning of the greedy expert, weight 0.1), dam (GANs trained "
        "on the training days; 42 synthetic days after every episode).",
    ),
    seed: int = typer.Option(0, "--seed", help="Networks, noise, episodes and replay."),
    prioritised: bool = typer.Option(
        False, "--prioritised", help="Prioritised replay (the paper's; alpha 0.6, beta 0.4)."
    ),
):
    """Train the DDPG agent of Yu et al. on daily prices (episodes from random start days,
    reward the log return net of costs). Resumable: rerun the same command. Back-test the
    result with `scifm portfolio backtest --policy RUN`.

    Example: scifm portfolio train --data sp500-stocks --assets JPM,BAC,WMT,MSFT,GE,XOM
    --start 2005-01-01 --end 2016-12-31 --episodes 20 --out runs/ddpg
    """
    from scifm import portfolio
    from scifm._progress import Display, RunBar

    chosen = tuple(m.strip() for m in modules.split(",") if m.strip())
    costs = portfolio.Costs(fee_bps, slippage_bps)
    config = portfolio.AgentConfig(
        episodes=episodes, episode=episode, cost=costs.rate, modules=chosen,
        prioritised=prioritised,
    )  # fmt: skip
    market = _market(data, assets)
    result = portfolio.train_agent(
        market, out, config=config, start=start, end=end, seed=seed,
        progress=RunBar(Display(), "episodes", unit="steps", owns_display=True,
                        quantity="-log return"),
    )  # fmt: skip
    print(f"{result['episodes']} episodes in {result['seconds']:.1f} s; mean log return of the "
          f"last 10: {result['mean_log_return_last_10']:.4f}")  # fmt: skip
    print(f"agent: {out} (scifm portfolio backtest --policy {out})")


@app.command()
def study(
    config: str = typer.Argument(
        ..., help="Portfolio study: a TOML file, or a shipped name (portfolio-demo, "
        "portfolio-table1).",
    ),
    out: str = typer.Option(
        None, "--out", help="Study directory [default: sweeps/<study name>]; reruns resume it."
    ),
    overrides: list[str] = typer.Option(  # noqa: B008 - typer reads it
        None, "--set", help="Override a key, e.g. --set 'seeds=[0,1]' --set agent.episodes=5."
    ),
    executor: str = typer.Option(
        "local", "--executor", help="Where agents train: local, slurm, submitit-local."
    ),
    jobs: int = typer.Option(1, "--jobs", help="Local processes training agents at once."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the resolved study and its agents; run nothing."
    ),
):
    """Run a portfolio study: every variant of the agent (ddpg, ipm, bcm, ipm+bcm) over several
    seeds and test windows (the main window and walk-forward years), against CRP and the other
    baselines, net of costs, plus a cost sweep.

    Every agent is a run directory resumed where it stopped when the study is rerun; finished
    agents are not retrained. Writes results.csv (one row per window, policy, seed and cost),
    report.md (Table 1 with mean ± sd over seeds, walk-forward, cost sweep) and plots.

    Example: scifm portfolio study portfolio-demo --out sweeps/portfolio-demo
    """
    import json
    import time

    from scifm import portfolio

    spec = portfolio.load_study(config, overrides or ())
    out = out or f"sweeps/{spec.name}"
    points = spec.points()
    if dry_run:
        print(json.dumps(spec.to_dict(), indent=2))
        print(f"{len(points)} agents ({len(spec.windows())} window(s), {len(spec.seeds)} seed(s), "
              f"variants {', '.join(spec.variants)}) into {out}")  # fmt: skip
        return
    start = time.perf_counter()
    report = portfolio.run_study(spec, out, executor=executor, jobs=jobs)
    print(f"portfolio study finished in {time.perf_counter() - start:.1f} s")
    text = report.read_text()
    table = text.split("\n\n")[2:4]  # the main window's heading and Table 1
    print("\n\n".join(table))
    print(f"report: {report} (results.csv and plots beside it)")


@app.command()
def datasets():
    """List the built-in datasets (read from PyPI packages' files: the portfolio extra)."""
    import importlib.util

    from scifm import portfolio

    for name, (package, _, about) in portfolio.DATASETS.items():
        there = "installed" if importlib.util.find_spec(package) else f"pip install {package}"
        print(f"{name:14s} {about} [{there}]")
