"""Portfolio studies: every agent and baseline on every window and cost, the report, resuming
and extending a study, refusals before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scifm import RunConflict, UserError, portfolio
from scifm.portfolio import Costs, backtest
from scifm.portfolio._study import point_dir

TINY = {
    "window": 3, "hidden": 2, "layers": [4], "batch": 4, "capacity": 50, "episode": 10, "episodes": 2,
    "dam_steps": 3, "dam_window": 8, "synthetic_days": 3,
}  # fmt: skip


def _csv(path, market):
    lines = ["date,asset,open,high,low,close"]
    for t, date in enumerate(market.dates):
        for i, asset in enumerate(market.assets):
            values = (market.open[t, i], market.high[t, i], market.low[t, i], market.close[t, i])
            lines.append(f"{date},{asset}," + ",".join(repr(float(v)) for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path


def _study(csv, **changes):
    table = {
        "name": "tiny", "data": [str(csv)], "train": ["2000-01-01", "2001-06-30"],
        "test": ["2001-07-01", "2002-04-30"], "variants": ["ddpg", "ipm+bcm"], "seeds": [0, 1],
        "baselines": ["crp", "buy-and-hold"], "cost_sweep": [0.0],
        "walk_forward": {"years": [2001], "train_years": 1}, "agent": TINY,
    }  # fmt: skip
    return portfolio.PortfolioStudy.from_dict(table | changes)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    market = portfolio.gbm_market(600, 3, seed=4)  # 2000-01-03 .. 2002-04
    csv = _csv(folder / "prices.csv", market)
    study = _study(csv)
    report = portfolio.run_study(study, folder / "out", progress=False)
    return study, market, folder / "out", report


def test_every_agent_and_baseline_is_back_tested_on_every_window_and_cost(finished):
    study, market, out, _ = finished
    rows = portfolio.read_results(out / "results.csv")
    seen = {(r["window"], r["policy"], r["seed"], r["cost_bps"]) for r in rows}
    expected = {("main", p, None, c) for p in ("crp", "buy-and-hold") for c in (70.0, 0.0)}
    expected |= {("main", v, s, c) for v in ("ddpg", "ipm+bcm") for s in (0, 1) for c in (70.0, 0.0)}
    expected |= {("wf-2001", p, None, 70.0) for p in ("crp", "buy-and-hold")}
    expected |= {("wf-2001", v, s, 70.0) for v in ("ddpg", "ipm+bcm") for s in (0, 1)}
    assert seen == expected and len(rows) == len(expected)
    wf = [r for r in rows if r["window"] == "wf-2001"]
    assert {(r["train_start"], r["train_end"], r["test_start"][:4]) for r in wf} == {
        ("2000-01-01", "2000-12-31", "2001")
    }
    # a baseline's row is the engine's back-test on its window and cost
    crp = next(r for r in rows if r["window"] == "main" and r["policy"] == "crp" and r["cost_bps"] == 0)
    direct = backtest(market, portfolio.CRP(), start="2001-07-01", end="2002-04-30", costs=Costs(0, 0))
    assert crp["sharpe"] == pytest.approx(direct.metrics()["sharpe"], rel=1e-9)
    assert crp["test_start"] == str(direct.dates[0])
    # an agent's row is the back-test of the agent saved in its run directory
    agent = next(r for r in rows if r["policy"] == "ipm+bcm" and r["seed"] == 1 and r["cost_bps"] == 70)
    again = backtest(market, portfolio.AgentPolicy(point_dir(out, "main", "ipm+bcm", 1)),
                     start="2001-07-01", end="2002-04-30", costs=Costs())  # fmt: skip
    assert agent["final_value"] == pytest.approx(again.metrics()["final_value"], rel=1e-9)
    # the seeds train different agents
    finals = {r["final_value"] for r in rows if r["policy"] == "ddpg" and r["window"] == "main"}
    assert len(finals) == 4


def test_the_report_has_table1_with_spread_the_walk_forward_and_the_cost_sweep(finished):
    study, _, out, report = finished
    text = report.read_text()
    rows = portfolio.read_results(out / "results.csv")
    ddpg = [r["sharpe"] for r in rows if r["window"] == "main" and r["policy"] == "ddpg" and r["cost_bps"] == 70]
    line = next(x for x in text.splitlines() if x.startswith("| DDPG |"))
    assert f"{np.mean(ddpg):.2f} ± {np.std(ddpg, ddof=1):.2f}" in line
    assert "| DDPG+IPM+BCM | 2 |" in text
    assert "## Walk-forward" in text and "## Cost sweep" in text
    assert "above CRP in" in text
    ipm = text.split("## IPM")[1].split("##")[0]  # the IPM against the simplest predictors
    assert "| IPM (online DyBM) |" in ipm and "| no change (0) |" in ipm
    for plot in ("wealth.png", "training.png", "walk_forward.png", "cost_sweep.png"):
        assert (out / plot).stat().st_size > 1000


def test_a_rerun_trains_nothing_and_a_lost_point_file_is_rebuilt_the_same(finished):
    study, _, out, _ = finished
    before = (out / "results.csv").read_text()
    point = point_dir(out, "main", "ddpg", 0) / "point.json"
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.eqx")}
    rows = json.loads(point.read_text())
    point.unlink()  # as if killed after training, before the back-test was recorded
    portfolio.run_study(study, out, progress=False)
    assert json.loads(point.read_text()) == rows
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.eqx")} == stamps
    assert (out / "results.csv").read_text() == before


def test_a_study_grows_by_seeds_and_variants_and_refuses_other_changes(finished, tmp_path):
    study, _, out, _ = finished
    with pytest.raises(RunConflict, match="another portfolio study.*train"):
        portfolio.run_study(_study(study.data[0], train=["2000-01-01", "2001-03-31"]), out, progress=False)
    with pytest.raises(RunConflict, match="walk_forward.train_years: 1 -> 2"):
        portfolio.run_study(_study(study.data[0], walk_forward={"years": [2001], "train_years": 2}), out, progress=False)
    grown = tmp_path / "grown"
    import shutil

    shutil.copytree(out, grown)
    old = point_dir(grown, "main", "ipm+bcm", 1) / "point.json"
    stamp = old.stat().st_mtime_ns
    more = _study(study.data[0], seeds=[0, 1, 2], variants=["ddpg", "ipm+bcm", "dam"])
    portfolio.run_study(more, grown, progress=False)
    assert old.stat().st_mtime_ns == stamp
    rows = portfolio.read_results(grown / "results.csv")
    assert {r["seed"] for r in rows if r["policy"] == "ddpg"} == {0, 1, 2}
    assert {r["seed"] for r in rows if r["policy"] == "dam" and r["window"] == "wf-2001"} == {0, 1, 2}
    text = (grown / "report.md").read_text()
    assert "| DDPG | 3 |" in text and "| DDPG+DAM | 3 |" in text
    dam = text.split("## DAM")[1].split("##")[0]  # the GANs' checks, beside Gaussian days
    assert "3 trained GAN sets" in dam and "| GAN |" in dam and "| i.i.d. Gaussian days |" in dam


@pytest.mark.parametrize("change, message", [
    ({"variants": ["ddpg", "gan"]}, "unknown module 'gan'"),
    ({"variants": ["ipm+ipm"]}, "names a module twice"),
    ({"baselines": ["crp", "momentum"]}, "unknown baseline 'momentum'; baselines: crp"),
    ({"agent": {"modules": ["bcm"]}}, "modules come from variants"),
    ({"agent": {"width": 3}}, "unknown key 'agent.width'"),
    ({"seeds": [1, 1]}, "seeds must be distinct"),
    ({"cost_sweep": [-5.0]}, "cost_sweep"),
    ({"train": ["2000-01-01"]}, "train must be"),
    ({"initial": 0.0}, "initial must be a finite number > 0"),
])  # fmt: skip
def test_bad_studies_are_refused_in_one_line(tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        _study(tmp_path / "prices.csv", **change)


def test_a_window_outside_the_data_is_refused_before_anything_is_written(tmp_path):
    csv = _csv(tmp_path / "prices.csv", portfolio.gbm_market(600, 2, seed=1))
    with pytest.raises(UserError, match=r"window wf-1999 \(train 1992-01-01..1998-12-31\): .* lies outside"):
        portfolio.run_study(_study(csv, walk_forward={"years": [1999]}), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_study_dry_run_and_shipped_studies_load(tmp_path, capsys):
    from scifm.cli import main

    for name in ("portfolio-demo", "portfolio-table1"):
        study = portfolio.load_study(name)
        assert study.costs() == Costs(20, 50) and study.train[0] == "2005-01-01"
    assert len(portfolio.load_study("portfolio-table1").points()) == 5 * 6 + 3 * 5 * 4
    main(["portfolio", "study", "portfolio-demo", "--dry-run", "--set", "seeds=[3]"])
    assert "2 agents (1 window(s), 1 seed(s), variants ddpg, bcm)" in capsys.readouterr().out
