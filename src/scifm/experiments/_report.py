"""A study's results: one table row per point (results.csv), plots, and report.md.

The headline number, per preset and downstream task: the data saving of fine-tuning. Let
``T`` be the test error scratch training reaches with the most downstream data ``n_max``; find
the smallest ``n*`` at which fine-tuning reaches ``T`` (log-log interpolation between the
grid's ``n``); the saving is ``n_max / n*``. When fine-tuning already beats ``T`` at the
smallest ``n`` of the grid, the saving is only known to be at least ``n_max / n_min``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from scifm.experiments._config import Study
from scifm.train import _checkpoint

COLUMNS = (
    "preset",
    "parameters",
    "task",
    "system",
    "shift",
    "method",
    "strategy",
    "n",
    "lr",
    "selected",
    "status",
    "val_rel_l2",
    "test_rel_l2",
    "test_rel_l2_std",
    "test_samples",
    "retained_rel_l2",
    "steps",
    "train_seconds",
    "seconds",
    "run",
)


def rows_from_points(study: Study, points: Sequence[tuple[dict, dict]]) -> list[dict]:
    """Table rows from ``(point, point.json)`` pairs; zero-shot rows come from pre-training.

    ``retained_rel_l2`` is the mean test error over the pre-training tasks (fine-tuned and
    zero-shot rows): what the model still knows of them. Per-task values are in extra
    columns ``retained_rel_l2[<task>]``. ``selected`` marks the learning rate each
    (preset, task, method, strategy, n) picks by validation error.
    """
    rows = []
    for point, result in points:
        test = result.get("test", {})
        retained = {t: test[t]["rel_l2_mean"] for t in study.pretrain.tasks if t in test}
        base = {
            "preset": point["preset"],
            "parameters": result.get("parameters", ""),
            "status": result["status"],
            "steps": result.get("steps", ""),
            "train_seconds": _round(result.get("train_seconds")),
            "seconds": _round(result.get("seconds")),
            "run": point["directory"],
        }
        if point["kind"] == "pretrain":
            for task in study.downstream:
                if "zero-shot" not in study.methods or task not in test:
                    continue
                rows.append(
                    {
                        **base,
                        **_task_columns(study, task),
                        "method": "zero-shot",
                        "strategy": "",
                        "n": 0,
                        "lr": study.pretrain.lr,
                        "val_rel_l2": "",
                        **_test_columns(test[task]),
                        **_retained_columns(retained),
                    }
                )
            continue
        row = {
            **base,
            **_task_columns(study, point["task"]),
            "method": point["kind"],
            "strategy": point["strategy"] if point["kind"] == "finetune" else "",
            "n": point["n"],
            "lr": point["lr"],
            "val_rel_l2": result["val_rel_l2"],
            **(_test_columns(test[point["task"]]) if point["task"] in test else {}),
            **(_retained_columns(retained) if point["kind"] == "finetune" else {}),
        }
        rows.append(row)
    _select(rows)
    return sorted(rows, key=_order)


def _round(x):
    return "" if x is None else round(float(x), 3)


def _task_columns(study: Study, task: str) -> dict:
    t = study.tasks[task]
    return {"task": task, "system": t.system, "shift": t.shift}


def _test_columns(summary: dict) -> dict:
    return {
        "test_rel_l2": summary["rel_l2_mean"],
        "test_rel_l2_std": summary["rel_l2_std"],
        "test_samples": summary["n"],
    }


def _retained_columns(retained: dict) -> dict:
    if not retained:
        return {}
    out = {"retained_rel_l2": sum(retained.values()) / len(retained)}
    out.update({f"retained_rel_l2[{t}]": v for t, v in retained.items()})
    return out


def _select(rows: list[dict]) -> None:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["preset"], r["task"], r["method"], r["strategy"], r["n"])].append(r)
    for group in groups.values():
        ok = [
            r for r in group if r["status"] == "ok" and math.isfinite(float(r["val_rel_l2"] or 0))
        ]
        best = min(ok, key=lambda r: float(r["val_rel_l2"] or 0), default=None)
        for r in group:
            r["selected"] = r is best


def _order(r: dict):
    method = {"zero-shot": 0, "scratch": 1, "finetune": 2}[r["method"]]
    return (r["preset"], r["task"], method, r["strategy"], r["n"], r["lr"])


def write_csv(rows: list[dict], path: Path) -> Path:
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(v) for k, v in r.items()})
    _checkpoint.atomic_write_text(path, buffer.getvalue())
    return path


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# -- analysis ----------------------------------------------------------------------------------------
def curves(rows: list[dict]) -> dict:
    """``(preset, task) -> {label: [(n, error, std, samples), ...]}`` over selected rows."""
    out = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if not r["selected"] or r.get("test_rel_l2", "") == "":
            continue
        label = r["method"] if r["method"] != "finetune" else f"fine-tune ({r['strategy']})"
        out[(r["preset"], r["task"])][label].append(
            (
                int(r["n"]),
                float(r["test_rel_l2"]),
                float(r["test_rel_l2_std"]),
                int(r["test_samples"]),
            )
        )
    for panel in out.values():
        for points in panel.values():
            points.sort()
    return out


def data_saving(scratch: list[tuple], finetune: list[tuple]) -> dict | None:
    """The headline for one panel (see the module docstring); ``None`` without both curves."""
    if not scratch or not finetune:
        return None
    n_max, target = scratch[-1][0], scratch[-1][1]
    ft = [(n, e) for n, e, *_ in finetune]
    out = {"n_max": n_max, "target": target, "finetune_at_n_max": dict(ft).get(n_max)}
    for i, (n, e) in enumerate(ft):
        if e <= target:
            if i == 0:
                out.update(n_needed=n, saving=n_max / n, bound=True)
            else:
                (n0, e0) = ft[i - 1]
                t = (math.log(target) - math.log(e0)) / (math.log(e) - math.log(e0))
                needed = math.exp(math.log(n0) + t * (math.log(n) - math.log(n0)))
                out.update(n_needed=needed, saving=n_max / needed, bound=False)
            return out
    out.update(n_needed=None, saving=None, bound=False)
    return out


def harmonic_score(downstream: float, retained: float) -> float:
    """The combined forgetting score: harmonic mean of ``1 - E`` downstream and retained.

    ``E`` are mean relative L2 errors (1 = predicting zero), each floored at 0 accuracy. It is
    high only when the model both specialises (low downstream error) and still solves the
    pre-training tasks (low retained error); one of them at E >= 1 gives 0.
    """
    a, b = max(0.0, 1 - downstream), max(0.0, 1 - retained)
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def forgetting(study: Study, rows: list[dict]) -> list[dict]:
    """Per fine-tuned (selected) row: downstream and retained errors, their change from the
    pre-trained model (zero-shot), and :func:`harmonic_score`."""
    zero = {
        (r["preset"], r["task"]): r
        for r in rows
        if r["method"] == "zero-shot" and r.get("retained_rel_l2", "") != ""
    }
    out = []
    for r in rows:
        if r["method"] != "finetune" or not r["selected"] or r.get("retained_rel_l2", "") == "":
            continue
        z = zero.get((r["preset"], r["task"]))
        ds, kept = float(r["test_rel_l2"]), float(r["retained_rel_l2"])
        out.append(
            {
                "preset": r["preset"],
                "task": r["task"],
                "strategy": r["strategy"],
                "n": int(r["n"]),
                "downstream": ds,
                "retained": kept,
                "downstream_change": None if z is None else ds - float(z["test_rel_l2"]),
                "retained_change": None if z is None else kept - float(z["retained_rel_l2"]),
                "score": harmonic_score(ds, kept),
            }
        )
    return sorted(out, key=lambda f: (f["preset"], f["task"], f["n"], f["strategy"]))


def plot_forgetting(study: Study, rows: list[dict], path: Path) -> Path | None:
    """Downstream error against retained (pre-training) error, per strategy, labelled by n."""
    points = forgetting(study, rows)
    if not points:
        return None
    plt = _pyplot()
    nr, nc = len(study.presets), len(study.downstream)
    fig, axes = plt.subplots(nr, nc, figsize=(4.4 * nc, 3.6 * nr), squeeze=False)
    strategies = list(dict.fromkeys(f["strategy"] for f in points))
    zero = {(r["preset"], r["task"]): r for r in rows if r["method"] == "zero-shot"}
    for i, preset in enumerate(study.presets):
        for j, task in enumerate(study.downstream):
            ax = axes[i][j]
            for k, strategy in enumerate(strategies):
                pts = [
                    f
                    for f in points
                    if (f["preset"], f["task"], f["strategy"]) == (preset, task, strategy)
                ]
                if not pts:
                    continue
                ax.plot(
                    [f["retained"] for f in pts],
                    [f["downstream"] for f in pts],
                    "-o",
                    color=f"C{k + 1}",
                    ms=4,
                    label=strategy,
                )
                for f in pts:
                    ax.annotate(
                        str(f["n"]),
                        (f["retained"], f["downstream"]),
                        fontsize=6,
                        xytext=(3, 2),
                        textcoords="offset points",
                    )
            z = zero.get((preset, task))
            if z is not None and z.get("retained_rel_l2", "") != "":
                ax.plot(
                    float(z["retained_rel_l2"]),
                    float(z["test_rel_l2"]),
                    "k*",
                    ms=9,
                    label="pre-trained",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{preset} · {task}", fontsize=9)
            ax.set_xlabel("error on pre-training tasks (retained)")
            if j == 0:
                ax.set_ylabel("downstream test error")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def forgetting_table(study: Study, rows: list[dict]) -> list[str]:
    points = forgetting(study, rows)
    if not points:
        return []
    md = [
        "| preset | task | n | strategy | downstream error | change | retained error | change | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sign = lambda x: "—" if x is None else f"{x:+.3g}"  # noqa: E731
    for f in points:
        md.append(
            f"| {f['preset']} | {f['task']} | {f['n']} | {f['strategy']} | {f['downstream']:.3g} "
            f"| {sign(f['downstream_change'])} | {f['retained']:.3g} | {sign(f['retained_change'])} "
            f"| {f['score']:.3f} |"
        )
    return md


# -- plots and report ------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=110)
    _pyplot().close(fig)
    os.replace(tmp, path)
    return path


STYLE = {"scratch": ("C0", "o"), "zero-shot": ("0.4", None)}


def plot_error_vs_n(study: Study, rows: list[dict], path: Path) -> Path:
    """Test error against downstream examples, log-log; one panel per preset and task."""
    plt = _pyplot()
    data = curves(rows)
    nr, nc = len(study.presets), len(study.downstream)
    fig, axes = plt.subplots(nr, nc, figsize=(4.2 * nc, 3.4 * nr), squeeze=False, sharex=True)
    for i, preset in enumerate(study.presets):
        for j, task in enumerate(study.downstream):
            ax = axes[i][j]
            panel = data.get((preset, task), {})
            k = 1
            for label, pts in panel.items():
                if label == "zero-shot":
                    ax.axhline(pts[0][1], color="0.4", ls="--", lw=1.2, label="zero-shot")
                    continue
                color, marker = STYLE.get(label, (f"C{k}", "s"))
                k += label != "scratch"
                n = [p[0] for p in pts]
                e = [p[1] for p in pts]
                sem = [p[2] / math.sqrt(p[3]) for p in pts]
                ax.errorbar(
                    n, e, yerr=sem, color=color, marker=marker, ms=4, capsize=2, label=label
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{preset} · {task} ({study.tasks[task].shift})", fontsize=9)
            if i == nr - 1:
                ax.set_xlabel("downstream examples n")
            if j == 0:
                ax.set_ylabel("test relative L2")
            if panel:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_saving_vs_size(study: Study, rows: list[dict], path: Path) -> Path | None:
    """Error ratio scratch / fine-tuned at the smallest and largest n, against parameters."""
    if len(study.presets) < 2:
        return None
    plt = _pyplot()
    data = curves(rows)
    params = {r["preset"]: int(r["parameters"]) for r in rows if r["parameters"] != ""}
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for j, task in enumerate(study.downstream):
        for which, ls in ((0, "-"), (-1, ":")):
            xs, ys = [], []
            for preset in study.presets:
                panel = data.get((preset, task), {})
                sc = panel.get("scratch")
                ft = next((v for k, v in panel.items() if k.startswith("fine-tune")), None)
                if sc and ft and preset in params:
                    xs.append(params[preset])
                    ys.append(sc[which][1] / ft[which][1])
            if xs:
                n = study.n_values[which]
                ax.plot(xs, ys, ls=ls, marker="o", color=f"C{j}", label=f"{task}, n={n}")
    ax.axhline(1, color="0.5", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("scratch error / fine-tuned error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _e(x) -> str:
    return "—" if x is None or x == "" else f"{float(x):.3g}"


def headline(study: Study, rows: list[dict]) -> list[dict]:
    """One line per (preset, task, strategy): scratch target, fine-tuning's n, the saving."""
    data = curves(rows)
    out = []
    for preset in study.presets:
        for task in study.downstream:
            panel = data.get((preset, task), {})
            zero = panel.get("zero-shot", [(0, None)])[0][1]
            for label, pts in panel.items():
                if not label.startswith("fine-tune"):
                    continue
                s = data_saving(panel.get("scratch", []), pts)
                if s is None:
                    continue
                out.append(
                    {"preset": preset, "task": task, "method": label, "zero_shot": zero, **s}
                )
    return out


def format_saving(h: dict) -> tuple[str, str]:
    """A :func:`headline` line's "n fine-tuning needs" and "examples saved" as text."""
    if h["saving"] is None:
        return "not reached", "< 1x"
    bound = h["bound"]
    return (
        f"{'<= ' if bound else ''}{h['n_needed']:.3g}",
        f"{'>= ' if bound else ''}{h['saving']:.3g}x",
    )


def headline_table(lines: list[dict]) -> list[str]:
    table = [
        "| preset | task | method | scratch error at n_max | fine-tuned at n_max | zero-shot "
        "| n fine-tuning needs | examples saved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for h in lines:
        needed, saving = format_saving(h)
        table.append(
            f"| {h['preset']} | {h['task']} | {h['method']} | {_e(h['target'])} (n={h['n_max']}) "
            f"| {_e(h['finetune_at_n_max'])} | {_e(h['zero_shot'])} | {needed} | {saving} |"
        )
    return table


def _claims(study: Study, rows: list[dict], lines: list[dict]) -> list[str]:
    """The paper's qualitative claims, checked against this study's numbers."""
    out = []
    savings = [h for h in lines if h["method"] == "fine-tune (full)"] or lines
    if savings:
        reached = [h for h in savings if h["saving"] is not None]
        tenfold = [h for h in reached if h["saving"] >= 10]
        text = ", ".join(
            f"{h['task']} ({h['preset']}): "
            + (
                "not reached"
                if h["saving"] is None
                else f"{'>=' if h['bound'] else ''}{h['saving']:.3g}x"
            )
            for h in savings
        )
        largest = max(study.n_values) / min(study.n_values)
        out.append(
            f"- *Fine-tuning needs orders of magnitude fewer downstream examples than scratch.* "
            f"Examples saved: {text}. At least one order of magnitude (>= 10x) in "
            f"{len(tenfold)} of {len(savings)} panels; fine-tuning never reaches scratch's best "
            f"error in {len(savings) - len(reached)}. The grid's n_max / n_min = {largest:g} "
            "bounds what can be measured"
            + (" (two orders need n_max / n_min >= 100)." if largest < 100 else ".")
        )
    data = curves(rows)
    if len(study.presets) > 1:
        parts = []
        for task in study.downstream:
            ratios = []
            for preset in study.presets:
                panel = data.get((preset, task), {})
                sc, ft = panel.get("scratch"), panel.get("fine-tune (full)")
                if sc and ft:
                    ratios.append((preset, sc[0][1] / ft[0][1]))
            if len(ratios) > 1:
                grows = all(b[1] >= a[1] for a, b in zip(ratios, ratios[1:], strict=False))
                parts.append(
                    f"{task}: "
                    + " -> ".join(f"{p} {r:.2g}x" for p, r in ratios)
                    + (" (grows)" if grows else " (does not grow monotonically)")
                )
        out.append(
            "- *Gains grow with model size* (scratch / fine-tuned error at the smallest n): "
            + ("; ".join(parts) if parts else "not measurable here")
            + "."
        )
    else:
        out.append("- *Gains grow with model size*: one preset in this study; not tested.")
    if len(study.pretrain.tasks) > 1:
        wins = []
        for task in study.downstream:
            for preset in study.presets:
                panel = data.get((preset, task), {})
                sc, ft = panel.get("scratch"), panel.get("fine-tune (full)")
                if sc and ft:
                    beat = sum(f[1] < s[1] for s, f in zip(sc, ft, strict=False))
                    wins.append(f"{task} ({preset}): better at {beat} of {len(sc)} n")
        out.append(
            f"- *A mixture-pretrained model adapts to every downstream system* (pre-trained on "
            f"{' + '.join(study.pretrain.tasks)}; fine-tuned vs scratch): " + "; ".join(wins) + "."
        )
    return out


def write_report(
    study: Study, rows: list[dict], sweep: Path, wall_seconds: float | None = None
) -> Path:
    """results.csv, the plots and report.md in ``sweep``; returns the report's path."""
    from scifm import data

    write_csv(rows, sweep / "results.csv")
    for task in dict.fromkeys([*study.pretrain.tasks, *study.downstream]):
        picture = sweep / "data" / f"{task}.png"
        if not picture.exists():
            with data.open(sweep / "data" / f"{task}-test.h5") as ds:
                data.plot_samples(ds, picture, count=3)
    plot_error_vs_n(study, rows, sweep / "error_vs_n.png")
    size_plot = plot_saving_vs_size(study, rows, sweep / "gain_vs_size.png")
    forgetting_plot = plot_forgetting(study, rows, sweep / "forgetting.png")
    lines = headline(study, rows)
    pre = study.pretrain
    counts = ", ".join(f"{study.tasks[t].label()}: {c}" for t, c in pre.counts().items())
    diverged = [r for r in rows if r["status"] != "ok"]
    md = [
        f"# Transfer study `{study.name}`",
        "",
        f"{study.resolution}x{study.resolution} grids; presets {', '.join(study.presets)}. "
        f"Pre-training: {counts} ({pre.epochs} epochs, batch {pre.batch_size}, lr {pre.lr:g}). "
        f"Downstream runs: {study.steps} optimizer steps each (fine-tuning and scratch alike), "
        f"batch {study.batch_size} (capped at n), learning rate chosen per (method, n) from "
        f"{', '.join(f'{x:g}' for x in study.lr_grid)} by validation error on {study.n_val} "
        f"samples; test errors on {study.n_test} samples per task (error bars: standard error).",
        "",
        "| task | system and ranges | role |",
        "| --- | --- | --- |",
    ]
    for name, task in study.tasks.items():
        role = "pre-training" if name in pre.tasks else ""
        if name in study.downstream:
            role = (role + ", " if role else "") + f"downstream ({task.shift})"
        if role:
            md.append(f"| {name} | {task.label()} | {role} |")
    md += [
        "",
        "## Headline: how many times fewer downstream examples fine-tuning needs",
        "",
        "To reach the test error that training from scratch reaches with the most downstream "
        "data (log-log interpolation between grid points; `>=` when fine-tuning is already "
        "better at the smallest n):",
        "",
        *headline_table(lines),
        "",
        "## Against the paper's claims (Subramanian et al. 2023)",
        "",
        *_claims(study, rows, lines),
        "",
        "## Error against downstream examples",
        "",
        "![error vs n](error_vs_n.png)",
        "",
    ]
    if size_plot is not None:
        md += ["## Gain against model size", "", "![gain vs size](gain_vs_size.png)", ""]
    if forgetting_plot is not None:
        md += [
            "## Forgetting: what fine-tuning keeps of pre-training",
            "",
            "Every fine-tuned model is also tested on the pre-training tasks. *Retained error* is "
            f"its mean test error over {', '.join(pre.tasks)}; *change* is against the "
            "pre-trained model (negative is better). *Score* = harmonic mean of (1 - downstream "
            "error) and (1 - retained error), each floored at 0: high only when the model "
            "both specialises and remembers. The learning rate is still chosen by downstream "
            "validation error alone.",
            "",
            "![forgetting](forgetting.png)",
            "",
            *forgetting_table(study, rows),
            "",
        ]
    md += [
        "## The data (test examples of each task)",
        "",
        *[f"![{t}](data/{t}.png)" for t in dict.fromkeys([*pre.tasks, *study.downstream])],
        "",
        "## Selected runs",
        "",
        "| preset | task | method | n | lr | val | test | retained (pre-training tasks) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["selected"]:
            method = r["method"] + (f" ({r['strategy']})" if r["strategy"] else "")
            md.append(
                f"| {r['preset']} | {r['task']} | {method} | {r['n']} | {float(r['lr']):g} "
                f"| {_e(r['val_rel_l2'])} | {_e(r.get('test_rel_l2'))} | {_e(r.get('retained_rel_l2'))} |"
            )
    md.append("")
    if diverged:
        md.append(
            f"{len(diverged)} run(s) diverged (recorded, not selected): "
            + ", ".join(r["run"] for r in diverged)
            + "."
        )
        md.append("")
    total = sum(float(r["seconds"] or 0) for r in rows if r["method"] != "zero-shot")
    md.append(
        f"All {len(rows)} rows are in `results.csv`. Training and evaluation time summed over "
        f"runs: {total:.0f} s"
        + (f"; wall time of this sweep invocation: {wall_seconds:.0f} s." if wall_seconds else ".")
    )
    path = sweep / "report.md"
    _checkpoint.atomic_write_text(path, "\n".join(md) + "\n")
    return path
