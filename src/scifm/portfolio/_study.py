"""Portfolio studies: the agent's variants (modules) x seeds x test windows against the
baselines, net of costs, with a cost sweep; Table 1 of Yu et al. redone with its spread.

A study is TOML (``base =`` and ``--set`` as for every scifm study, :mod:`scifm._config`)::

    name = "table1"
    data = ["sp500-stocks"]                  # a built-in dataset, or CSV files/folders
    assets = ["JPM", "BAC", "WMT", "MSFT", "GE", "XOM"]
    train = ["2005-01-01", "2016-12-31"]     # the main window (the paper's)
    test = ["2017-01-01", "2018-12-04"]
    variants = ["ddpg", "ipm", "bcm", "ipm+bcm"]
    seeds = [0, 1, 2, 3, 4]
    baselines = ["crp", "buy-and-hold", "best-asset", "olmar", "eg"]
    fee_bps = 20.0
    slippage_bps = 50.0
    cost_sweep = [0, 10, 35, 70, 140]       # total bps, the main window's back-tests again
    [walk_forward]                           # more test windows: each a calendar year,
    years = [2012, 2013, 2014, 2015, 2016]   # the agent retrained on the years before it
    train_years = 7
    [agent]                                  # AgentConfig's settings (episodes, sizes, ...)
    episodes = 30

**Protocol.** Every variant and seed trains one agent per window (on that window's training
days, reward net of the study's cost) and is back-tested on the window's test days in the
engine (decisions at closes, fills at the next open, ``fee_bps + slippage_bps``). The
baselines are deterministic: one back-test per window. The cost sweep back-tests the main
window's agents and baselines again at each total cost (all of it as fee); the agents are not
retrained for it (they learnt at the study's cost). Metric conventions:
:mod:`scifm.portfolio._metrics`.

**Files** in the study directory: ``study.json``; ``runs/WINDOW/VARIANT/seed-S/`` (the agent's
run directory, resumable; ``test/`` its back-test files; ``point.json`` its rows, written last);
``results.csv`` (one row per window, policy, seed and cost); ``report.md`` and plots. A rerun
skips finished points and resumes unfinished agents; variants, seeds, baselines and costs may be
added to a study that has run (everything else changing is refused).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import typing
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from scifm._checks import UserError, check_count, check_non_negative, check_positive
from scifm._config import apply_overrides, build, plain, read_json_config, read_toml
from scifm._io import atomic_write_json, atomic_write_text
from scifm._progress import Display, NoProgress, RunBar
from scifm._runs import RunFinished, open_study_directory, read_json
from scifm.portfolio._agent import AgentConfig, AgentPolicy, train_agent
from scifm.portfolio._baselines import POLICIES
from scifm.portfolio._engine import Backtest, Costs, backtest
from scifm.portfolio._market import DATASETS, Market, load_csv, load_dataset
from scifm.portfolio._report import write_backtest

STUDY = "study.json"
POINT = "point.json"
MAIN = "main"
# keys a study that has run may change: more of them adds runs, nothing is redone
EXTENSIBLE = ("variants", "seeds", "baselines", "cost_sweep", "walk_forward.variants")
MODULE_NAMES = {"ipm": "IPM", "bcm": "BCM", "dam": "DAM"}


@dataclass(frozen=True)
class WalkForward:
    """Test windows after the main one's protocol: each year of ``years`` (1 Jan .. 31 Dec) is
    a test window, its agents trained on the ``train_years`` calendar years before it.
    ``variants``: the study's variants retrained per year (default: all of them)."""

    years: tuple[int, ...] = ()
    train_years: int = 7
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    name: str
    train: tuple[str, str]
    test: tuple[str, str]


@dataclass(frozen=True)
class PortfolioStudy:
    """A portfolio study; see the module docstring."""

    name: str
    data: tuple[str, ...]
    assets: tuple[str, ...] = ()
    train: tuple[str, ...] = ("2005-01-01", "2016-12-31")
    test: tuple[str, ...] = ("2017-01-01", "2018-12-04")
    variants: tuple[str, ...] = ("ddpg", "ipm", "bcm", "ipm+bcm")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    baselines: tuple[str, ...] = ("crp", "buy-and-hold", "best-asset", "olmar", "eg")
    fee_bps: float = 20.0
    slippage_bps: float = 50.0
    cost_sweep: tuple[float, ...] = ()
    walk_forward: WalkForward = field(default_factory=WalkForward)
    agent: dict[str, Any] = field(default_factory=dict)
    initial: float = 500_000.0
    slurm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.data:
            raise UserError("data: give a built-in dataset or CSV files/folders")
        for key in ("train", "test"):
            if len(getattr(self, key)) != 2:
                raise UserError(f"{key} must be [first day, last day], got {getattr(self, key)}")
        if not self.variants:
            raise UserError("variants: list at least one (ddpg, ipm, bcm, ipm+bcm, ...)")
        for variant in self.variants:
            self.agent_config(variant)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        for seed in self.seeds:
            check_count("seed", seed, minimum=0)
        for name in self.baselines:
            if name not in POLICIES:
                raise UserError(f"unknown baseline {name!r}; baselines: {', '.join(POLICIES)}")
        self.costs()
        for bps in self.cost_sweep:
            check_non_negative("cost_sweep", bps)
            Costs(bps, 0.0)
        check_count("walk_forward.train_years", self.walk_forward.train_years)
        for variant in self.walk_forward.variants:
            if variant not in self.variants:
                raise UserError(
                    f"walk_forward.variants: {variant!r} is not among the study's variants "
                    f"({', '.join(self.variants)})"
                )
        check_positive("initial", self.initial)

    def agent_config(self, variant: str) -> AgentConfig:
        """The agent's settings for ``variant`` ("ddpg", or modules joined by "+")."""
        modules = () if variant == "ddpg" else tuple(variant.split("+"))
        if variant != "ddpg" and len(set(modules)) != len(modules):
            raise UserError(f"variant {variant!r} names a module twice")
        if "modules" in self.agent or "cost" in self.agent:
            raise UserError("agent: modules come from variants, the cost from fee_bps + slippage_bps")
        fields = {f.name for f in dataclasses.fields(AgentConfig)}
        unknown = sorted(set(self.agent) - fields)
        if unknown:
            raise UserError(f"unknown key 'agent.{unknown[0]}'; valid keys: {', '.join(sorted(fields))}")
        settings = dict(self.agent)
        if "layers" in settings:
            settings["layers"] = tuple(settings["layers"])
        try:
            return AgentConfig(**settings, modules=modules, cost=self.costs().rate)
        except TypeError as e:
            raise UserError(f"agent: {e}") from None

    def costs(self) -> Costs:
        return Costs(self.fee_bps, self.slippage_bps)

    def windows(self) -> list[Window]:
        """The main window, then the walk-forward years."""
        out = [Window(MAIN, tuple(self.train), tuple(self.test))]
        k = self.walk_forward.train_years
        for year in self.walk_forward.years:
            out.append(Window(
                f"wf-{year}", (f"{year - k}-01-01", f"{year - 1}-12-31"),
                (f"{year}-01-01", f"{year}-12-31"),
            ))  # fmt: skip
        return out

    def market(self) -> Market:
        if len(self.data) == 1 and self.data[0] in DATASETS:
            market = load_dataset(self.data[0])
        else:
            market = load_csv(list(self.data))
        return market.select(list(self.assets)) if self.assets else market

    def check_windows(self, market: Market) -> None:
        """Refuse a window outside the data (before anything is written)."""
        for window in self.windows():
            for part in ("train", "test"):
                days = getattr(window, part)
                try:
                    market.between(*days)
                except ValueError as e:
                    raise UserError(f"window {window.name} ({part} {days[0]}..{days[1]}): {e}") from None

    def points(self) -> list[tuple[str, str, int]]:
        """(window, variant, seed) of every agent to train, in running order."""
        later = self.walk_forward.variants or self.variants
        return [
            (w.name, v, s) for w in self.windows() for s in self.seeds
            for v in (self.variants if w.name == MAIN else later)
        ]  # fmt: skip

    def to_dict(self) -> dict:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> PortfolioStudy:
        return build(cls, data)


def _configs() -> Path:
    return Path(str(resources.files("scifm.portfolio") / "configs"))


def load_study(source: str | Path, overrides: typing.Sequence[str] = ()) -> PortfolioStudy:
    """Read a portfolio study (TOML path or shipped name), apply ``overrides``, check it. CSV
    paths in ``data`` are relative to the current directory, saved absolute.

    Raises:
        ValueError: unreadable file, unknown key or name, a value no run can use.
    """
    path = Path(source)
    if path.suffix == ".json":
        data = read_json_config(path, "portfolio study")
    else:
        data = read_toml(source, _configs(), "portfolio study")
    apply_overrides(data, overrides)
    given = data.get("data")
    if isinstance(given, list) and not (len(given) == 1 and given[0] in DATASETS):
        data["data"] = [str(Path(p).resolve()) if isinstance(p, str) else p for p in given]
    return PortfolioStudy.from_dict(data)


def variant_label(variant: str) -> str:
    """"ipm+bcm" -> "DDPG+IPM+BCM"."""
    if variant == "ddpg":
        return "DDPG"
    return "DDPG+" + "+".join(MODULE_NAMES.get(m, m) for m in variant.split("+"))


def prepare(study: PortfolioStudy, out: str | Path) -> Path:
    """Create (or reopen) the study directory.

    Raises:
        RunConflict: ``out`` holds another study or something else; nothing is written.
    """
    return open_study_directory(
        out, study.to_dict(), what="portfolio study", extensible=EXTENSIBLE, saved_name=STUDY
    )


def point_dir(out: Path, window: str, variant: str, seed: int) -> Path:
    return Path(out) / "runs" / window / variant / f"seed-{seed}"


def _row(window: Window, policy: str, seed, result: Backtest, costs: Costs) -> dict:
    return {
        "window": window.name, "train_start": window.train[0], "train_end": window.train[1],
        "test_start": str(result.dates[0]), "test_end": str(result.dates[-1]),
        "policy": policy, "seed": seed, "hindsight": result.hindsight,
        "cost_bps": costs.fee_bps + costs.slippage_bps, **result.metrics(),
    }  # fmt: skip


def _sweep_costs(study: PortfolioStudy, window: Window) -> list[Costs]:
    """The study's costs, then (main window only) the sweep's total costs."""
    costs = [study.costs()]
    if window.name == MAIN:
        costs += [Costs(bps, 0.0) for bps in study.cost_sweep]
    return costs


def run_point(out: str | Path, window: str, variant: str, seed: int, progress=None) -> dict:
    """Train one agent (resumed if a run was cut) and back-test it on its window's test days
    at the study's cost (and the cost sweep's); writes and returns ``point.json``."""
    out = Path(out)
    study = load_study(out / STUDY)
    market = study.market()
    chosen = next(w for w in study.windows() if w.name == window)
    run = point_dir(out, window, variant, seed)
    try:
        train_agent(
            market, run, config=study.agent_config(variant), start=chosen.train[0],
            end=chosen.train[1], seed=seed, progress=progress or NoProgress(),
        )  # fmt: skip
    except RunFinished:  # trained, killed before its back-tests were recorded
        pass
    policy, rows = AgentPolicy(run), []
    for k, costs in enumerate(_sweep_costs(study, chosen)):
        result = backtest(
            market, policy, start=chosen.test[0], end=chosen.test[1], costs=costs,
            initial=study.initial,
        )  # fmt: skip
        if k == 0:
            write_backtest(result, run / "test", overwrite=True)
        rows.append(_row(chosen, variant, seed, result, costs))
    atomic_write_json(run / POINT, {"rows": rows})
    return {"rows": rows}


def _finished(out: Path, window: str, variant: str, seed: int) -> dict | None:
    path = point_dir(out, window, variant, seed) / POINT
    if not path.exists():
        return None
    return read_json(path, "delete it and rerun the study to redo that agent")


def baseline_rows(study: PortfolioStudy, market: Market, out: Path) -> list[dict]:
    """Every baseline on every window at every cost (deterministic: no seeds); the main
    window's back-tests are kept in ``baselines/NAME/``."""
    rows = []
    for window in study.windows():
        for k, costs in enumerate(_sweep_costs(study, window)):
            for name in study.baselines:
                result = backtest(
                    market, POLICIES[name](), start=window.test[0], end=window.test[1],
                    costs=costs, initial=study.initial,
                )  # fmt: skip
                if k == 0 and window.name == MAIN:
                    write_backtest(result, out / "baselines" / name, overwrite=True)
                rows.append(_row(window, name, "", result, costs))
    return rows


COLUMNS = (
    "window", "train_start", "train_end", "test_start", "test_end", "policy", "seed",
    "hindsight", "cost_bps", "sharpe", "sortino", "max_drawdown", "annual_return",
    "annual_volatility", "final_value", "turnover", "var_95", "cvar_95", "costs_paid",
)  # fmt: skip


def write_results(rows: list[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def read_results(path: str | Path) -> list[dict]:
    """results.csv back as rows (numbers as floats, seeds as ints, baselines' seed None)."""
    numeric = set(COLUMNS[COLUMNS.index("cost_bps") :])
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            row = dict(row)
            for key in numeric:
                row[key] = float(row[key])
            row["seed"] = int(row["seed"]) if row["seed"] else None
            row["hindsight"] = row["hindsight"] == "True"
            rows.append(row)
    return rows


def run_study(
    study: PortfolioStudy, out: str | Path, *, executor: str = "local", jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Run every point of ``study`` into ``out`` (resumable), then the baselines, results.csv
    and the report.

    Args:
        executor, jobs: where the agents train (:func:`scifm.experiments.make_executor`:
            "local" inline or ``jobs`` processes, "slurm", "submitit-local").

    Returns:
        The path of report.md.

    Raises:
        ValueError: a window outside the data, bad executor; :class:`scifm.RunConflict` when
            ``out`` holds another study.
        RuntimeError: agents failed (the finished ones are kept; a rerun retries the rest).
    """
    from scifm.experiments._executors import Call, check_executor, make_executor, run_calls
    from scifm.portfolio._study_report import write_report

    check_executor(executor, jobs, study.slurm)
    market = study.market()
    study.check_windows(market)
    out = prepare(study, out)
    display = Display(progress)
    pool = None
    try:
        points = study.points()
        bar = display.bar("agents", len(points))
        rows: list[dict] = []

        def on_done(call, result):
            rows.extend(result["rows"])
            main = result["rows"][0]
            bar.update(advance=1, info=f"last: {call.label}, Sharpe {main['sharpe']:.2f}")

        calls = []
        for window, variant, seed in points:
            label = f"{window} {variant_label(variant)} seed {seed}"
            done = _finished(out, window, variant, seed)
            if done is not None:
                on_done(Call(label, run_point), done)
                continue
            run_bar = None
            if progress:
                run_bar = lambda label=label: RunBar(display, label, unit="steps", quantity="-log return")  # noqa: E731
            calls.append(Call(label, run_point, (str(out), window, variant, seed), progress=run_bar))
        pool = make_executor(executor, jobs=jobs, folder=out / "submitit", slurm=study.slurm)
        run_calls(pool, calls, on_done)
        rows = baseline_rows(study, market, out) + rows
    finally:
        display.close()
        if isinstance(pool, Executor):
            pool.shutdown()
    window = {w.name: k for k, w in enumerate(study.windows())}
    policy = {name: k for k, name in enumerate((*study.baselines, *study.variants))}
    rows.sort(key=lambda r: (
        window[r["window"]], policy[r["policy"]], -1 if r["seed"] == "" else r["seed"], r["cost_bps"]
    ))  # fmt: skip
    write_results(rows, out / "results.csv")
    return write_report(study, out, rows, market)
