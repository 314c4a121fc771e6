"""A portfolio study's report: Table 1 with its spread over seeds, the walk-forward windows,
the cost sweep, and their plots (``report.md`` beside ``results.csv``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scifm._io import atomic_write_text, figure, read_jsonl, save_figure
from scifm.portfolio._study import MAIN, PortfolioStudy, point_dir, variant_label

METRIC_COLUMNS = (
    ("sharpe", "Sharpe", "{:.2f}"), ("sortino", "Sortino", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.1%}"), ("annual_return", "annual return", "{:.1%}"),
    ("final_value", "final value", "{:,.0f}"), ("turnover", "turnover", "{:.3f}"),
)  # fmt: skip


def _label(study: PortfolioStudy, policy: str) -> str:
    if policy in study.variants:
        return variant_label(policy)
    return policy + (" (hindsight)" if policy == "best-asset" else "")


def _cell(values: list[float], fmt: str) -> str:
    """The mean, with the sample standard deviation over seeds when there are several."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def _select(rows, window: str, cost: float) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["window"] == window and abs(r["cost_bps"] - cost) < 1e-9:
            out.setdefault(r["policy"], []).append(r)
    return out


def _policies(study: PortfolioStudy) -> list[str]:
    return [*study.baselines, *study.variants]


def table1(study: PortfolioStudy, rows: list[dict]) -> str:
    """The main window at the study's cost: every policy's metrics (mean ± sd over seeds)."""
    cost = study.fee_bps + study.slippage_bps
    chosen = _select(rows, MAIN, cost)
    crp = chosen.get("crp", [{}])[0].get("sharpe")
    head = ["policy", "runs", *(title for _, title, _ in METRIC_COLUMNS)]
    if crp is not None:
        head.append("Sharpe > CRP")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for policy in _policies(study):
        found = chosen.get(policy, [])
        if not found:
            continue
        cells = [_label(study, policy), str(len(found))]
        cells += [_cell([r[key] for r in found], fmt) for key, _, fmt in METRIC_COLUMNS]
        if crp is not None:
            cells.append("" if policy == "crp" else f"{sum(r['sharpe'] > crp for r in found)} of {len(found)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def walk_forward_table(study: PortfolioStudy, rows: list[dict]) -> str:
    """Sharpe per test window (mean ± sd over seeds), at the study's cost."""
    cost = study.fee_bps + study.slippage_bps
    windows = study.windows()
    head = ["policy", *(f"{w.test[0][:4]}" + ("-" + w.test[1][:4] if w.name == MAIN else "") for w in windows), "mean", "windows > CRP"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    crp = {w.name: _select(rows, w.name, cost).get("crp", [{}])[0].get("sharpe") for w in windows}
    for policy in _policies(study):
        cells, means, beats = [_label(study, policy)], [], 0
        for w in windows:
            found = _select(rows, w.name, cost).get(policy, [])
            if not found:
                cells.append("-")
                continue
            values = [r["sharpe"] for r in found]
            cells.append(_cell(values, "{:.2f}"))
            means.append(float(np.mean(values)))
            beats += crp[w.name] is not None and np.mean(values) > crp[w.name]
        cells.append(f"{np.mean(means):.2f}" if len(means) == len(windows) else "-")  # all or none
        cells.append("" if policy == "crp" or crp[MAIN] is None else f"{beats} of {len(means)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(study: PortfolioStudy, rows: list[dict]) -> str:
    """Sharpe on the main window at each total cost (mean over seeds)."""
    costs = sorted({study.fee_bps + study.slippage_bps, *study.cost_sweep})
    head = ["policy", *(f"{c:g} bps" for c in costs)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for policy in _policies(study):
        cells = [_label(study, policy)]
        for c in costs:
            found = _select(rows, MAIN, c).get(policy, [])
            cells.append(f"{np.mean([r['sharpe'] for r in found]):.2f}" if found else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(study: PortfolioStudy, rows: list[dict]) -> str:
    """One honest sentence per variant: does it beat CRP after costs, and how reliably."""
    cost = study.fee_bps + study.slippage_bps
    chosen = _select(rows, MAIN, cost)
    if "crp" not in chosen:
        return "(CRP is not among the baselines: no comparison.)"
    crp = chosen["crp"][0]["sharpe"]
    out = []
    for variant in study.variants:
        found = chosen.get(variant, [])
        if not found:
            continue
        values = np.array([r["sharpe"] for r in found])
        diff = values.mean() - crp
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        word = "above" if diff > 0 else "below"
        out.append(
            f"- {variant_label(variant)}: mean Sharpe {values.mean():.2f} ({len(values)} seeds, "
            f"sd {sd:.2f}), {abs(diff):.2f} {word} CRP's {crp:.2f}; above CRP in "
            f"{int((values > crp).sum())} of {len(values)} seeds."
        )
    return "\n".join(out)


def ipm_check(market, study: PortfolioStudy) -> str:
    """The IPM's predictions of the next day's close/high/low changes on the main test days,
    against the simplest predictors (no change; the last day's change): mean squared error."""
    from scifm.portfolio._agent import Predictor, ipm_inputs

    first, last = market.between(*study.test)
    predictor = Predictor(len(market.assets), seed=0)
    made = np.stack([predictor.upto(market, t) for t in range(first - 1, last)]) / 100
    actual = ipm_inputs(market._rows(slice(first - 2, last + 1)))[1:]  # days first-1 .. last
    truth, previous = actual[1:], actual[:-1]
    rows = [
        ("IPM (online DyBM)", np.mean((made - truth) ** 2)),
        ("last day's change", np.mean((previous - truth) ** 2)),
        ("no change (0)", np.mean(truth**2)),
    ]
    lines = ["| predictor | MSE of the next day's changes (%^2) |", "| --- | --- |"]
    lines += [f"| {name} | {1e4 * v:.4g} |" for name, v in rows]
    return "\n".join(lines)


def dam_check(study: PortfolioStudy, out: Path) -> str | None:
    """The GANs' checks over the main window's agents (each trained its own): MMD^2 on the
    held-in windows at the start and end of training, and on held-out windows with the
    permutation test's p-value, beside i.i.d. Gaussian days of the same mean and spread."""
    records = []
    for variant in study.variants:
        if "dam" not in variant.split("+"):
            continue
        for seed in study.seeds:
            path = point_dir(out, MAIN, variant, seed) / "dam.json"
            if path.exists():
                import json

                records.append(json.loads(path.read_text()))
    if not records:
        return None
    start = np.mean([r["mmd"][0][1] for r in records])
    end = np.mean([r["mmd"][-1][1] for r in records])
    lines = [
        f"{len(records)} trained GAN sets (one GAN per asset each). MMD^2 on held-in windows: "
        f"{start:.3g} at the start of training, {end:.3g} at its end (mean).",
    ]
    if "heldout_mmd2" in records[0]:
        held = np.concatenate([r["heldout_mmd2"] for r in records])
        p = np.concatenate([r["p_value"] for r in records])
        base = np.concatenate([r["baseline_mmd2"] for r in records])
        bp = np.concatenate([r["baseline_p_value"] for r in records])
        lines += [
            "",
            f"Held-out windows ({records[0]['heldout_windows']} non-overlapping per asset):",
            "",
            "| generator | MMD^2 (mean) | p-value (median) | assets x seeds with p < 0.05 |",
            "| --- | --- | --- | --- |",
            f"| GAN | {held.mean():.3g} | {np.median(p):.3g} | {int((p < 0.05).sum())} of {len(p)} |",
            f"| i.i.d. Gaussian days | {base.mean():.3g} | {np.median(bp):.3g} | "
            f"{int((bp < 0.05).sum())} of {len(bp)} |",
        ]
    return "\n".join(lines)


def _wealth(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    daily = path / "daily.csv"
    if not daily.exists():
        return None
    with open(daily, newline="") as f:
        table = list(csv.DictReader(f))
    dates = np.array([r["date"] for r in table], dtype="datetime64[D]")
    return dates, np.array([float(r["wealth"]) for r in table])


def plot_wealth(study: PortfolioStudy, out: Path) -> Path:
    """The main window: each baseline's wealth, each variant's mean over seeds with its range."""
    fig = figure(figsize=(8, 4.5))
    ax = fig.subplots()
    lines = []  # (label, dates, wealth, band or None, style)
    for name in study.baselines:
        got = _wealth(out / "baselines" / name)
        if got is not None:
            lines.append((_label(study, name), got[0], got[1], None, "--"))
    for variant in study.variants:
        curves = [_wealth(point_dir(out, MAIN, variant, s) / "test") for s in study.seeds]
        curves = [c for c in curves if c is not None]
        if curves:
            stack = np.stack([c[1] for c in curves])
            band = (stack.min(0), stack.max(0)) if len(curves) > 1 else None
            lines.append((f"{variant_label(variant)} (mean of {len(curves)})", curves[0][0], stack.mean(0), band, "-"))
    # the scale follows the curves that keep at least a quarter of the start; others are
    # clipped and say so
    kept = [w for _, _, w, _, _ in lines if w.min() >= 0.25 * study.initial]
    lo, hi = (min(w.min() for w in kept), max(w.max() for w in kept)) if kept else (None, None)
    for label, dates, wealth, band, style in lines:
        off = lo is not None and wealth.min() < 0.25 * study.initial
        line = ax.plot(dates.astype(object), wealth, style, lw=1.8 if style == "-" else 1,
                       label=label + (" (off scale)" if off else ""))  # fmt: skip
        if band is not None:
            ax.fill_between(dates.astype(object), *band, color=line[0].get_color(), alpha=0.15)
    if lo is not None:
        ax.set_ylim(0.9 * lo, 1.1 * hi)
    ax.set_yscale("log")
    ax.set_ylabel(f"wealth, net of {study.fee_bps + study.slippage_bps:g} bps (log scale)")
    ax.set_title(f"test {study.test[0]} .. {study.test[1]} (band: seeds' range)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, out / "wealth.png")


def _sharpe_series(study, rows, points) -> dict[str, tuple[list, list]]:
    """Each policy's Sharpe at each ``(window, cost)`` of ``points``: mean and sd over seeds."""
    series = {}
    for policy in _policies(study):
        means, sds = [], []
        for window, cost in points:
            values = [r["sharpe"] for r in _select(rows, window, cost).get(policy, [])]
            means.append(np.mean(values) if values else np.nan)
            sds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
        series[policy] = (means, sds)
    return series


def _sharpe_lines(ax, study, x, series: dict[str, tuple[list, list]]) -> None:
    """Sharpe lines (mean ± sd) per policy; policies with a Sharpe below -3 somewhere (ruin)
    are clipped off the scale and say so, so that they do not flatten the others."""
    floor = -3.0
    kept = [
        m - sd for means, sds in series.values() if np.nanmin(means) >= floor
        for m, sd in zip(means, sds, strict=True) if np.isfinite(m)
    ]  # fmt: skip
    lowest = min(kept, default=floor)
    for policy, (means, sds) in series.items():
        off = np.nanmin(means) < floor
        style = "-o" if policy in study.variants else "--"
        ax.errorbar(x, means, yerr=sds, fmt=style, ms=3, capsize=2,
                    label=_label(study, policy) + (" (off scale)" if off else ""))  # fmt: skip
    if any(np.nanmin(m) < floor for m, _ in series.values()):
        ax.set_ylim(bottom=min(lowest, 0) - 0.5)


def plot_costs(study: PortfolioStudy, rows: list[dict], out: Path) -> Path | None:
    costs = sorted({study.fee_bps + study.slippage_bps, *study.cost_sweep})
    if len(costs) < 2:
        return None
    fig = figure(figsize=(6, 4))
    ax = fig.subplots()
    _sharpe_lines(ax, study, costs, _sharpe_series(study, rows, [(MAIN, c) for c in costs]))
    ax.set_xlabel("total cost per trade (bps)")
    ax.set_ylabel("Sharpe (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out / "cost_sweep.png")


def plot_walk_forward(study: PortfolioStudy, rows: list[dict], out: Path) -> Path | None:
    windows = sorted(study.windows(), key=lambda w: w.test[0])  # in time
    if len(windows) < 2:
        return None
    cost = study.fee_bps + study.slippage_bps
    fig = figure(figsize=(7, 4))
    ax = fig.subplots()
    x = np.arange(len(windows))
    _sharpe_lines(ax, study, x, _sharpe_series(study, rows, [(w.name, cost) for w in windows]))
    ax.set_xticks(x, [f"{w.test[0][:4]}-{w.test[1][:4]}" if w.name == MAIN else w.test[0][:4] for w in windows])
    ax.set_xlabel("test window")
    ax.set_ylabel("Sharpe, net of costs")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out / "walk_forward.png")


def plot_training(study: PortfolioStudy, out: Path) -> Path:
    """The main window's training curves: each variant's log return per episode (seed mean)."""
    fig = figure(figsize=(6, 4))
    ax = fig.subplots()
    for variant in study.variants:
        curves = []
        for s in study.seeds:
            path = point_dir(out, MAIN, variant, s) / "metrics.jsonl"
            if path.exists():
                curves.append([r["log_return"] for r in read_jsonl(path)])
        if curves:
            n = min(len(c) for c in curves)
            ax.plot(np.arange(1, n + 1), np.mean([c[:n] for c in curves], 0), label=variant_label(variant))
    ax.set_xlabel("episode")
    ax.set_ylabel("episode log return, net (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out / "training.png")


def write_report(study: PortfolioStudy, out: Path, rows: list[dict], market=None) -> Path:
    """report.md and its plots in ``out`` (with ``market``, the IPM's predictions checked)."""
    cost = study.fee_bps + study.slippage_bps
    config = study.agent_config(study.variants[0])
    plot_wealth(study, out)
    plot_training(study, out)
    plot_costs(study, rows, out)
    plot_walk_forward(study, rows, out)
    assets = ", ".join(study.assets) if study.assets else "all"
    text = [
        f"# Portfolio study {study.name}",
        "",
        f"Data {', '.join(Path(d).name for d in study.data)}, assets {assets}. Main window: "
        f"train {study.train[0]} .. {study.train[1]}, test {study.test[0]} .. {study.test[1]}. "
        f"Costs {study.fee_bps:g} + {study.slippage_bps:g} bps of the value traded; decisions "
        f"at closes, fills at the next open; start {study.initial:,.0f}. Seeds "
        f"{', '.join(map(str, study.seeds))}; agent: {config.episodes} episodes of "
        f"{config.episode} steps, LSTM {config.hidden}, dense {list(config.layers)}, batch "
        f"{config.batch}, replay {config.capacity}. Sharpe: mean daily return over its "
        "standard deviation, x sqrt(252), risk-free 0 (the paper's convention).",
        "",
        f"## Main window, net of {cost:g} bps (mean ± sd over seeds)",
        "",
        table1(study, rows),
        "",
        verdict(study, rows),
        "",
        "![wealth](wealth.png)",
        "",
        "![training](training.png)",
    ]
    modules = {m for v in study.variants for m in v.split("+")}
    if "ipm" in modules and market is not None:
        text += ["", "## IPM: next-day predictions on the main test days", "", ipm_check(market, study)]
    dam = dam_check(study, out) if "dam" in modules else None
    if dam:
        text += ["", "## DAM: the GANs' days against real ones", "", dam]
    if len(study.windows()) > 1:
        k = study.walk_forward.train_years
        text += [
            "",
            f"## Walk-forward: each year tested after training on the {k} year(s) before it",
            "",
            walk_forward_table(study, rows),
            "",
            "![walk-forward](walk_forward.png)",
        ]
    if study.cost_sweep:
        text += [
            "",
            "## Cost sweep: the main window's back-tests at other total costs",
            "",
            "The agents were trained at the study's cost and are not retrained per cost.",
            "",
            cost_table(study, rows),
            "",
            "![cost sweep](cost_sweep.png)",
        ]
    return atomic_write_text(out / "report.md", "\n".join(text) + "\n")
