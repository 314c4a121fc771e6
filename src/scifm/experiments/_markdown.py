"""A study's report: results.csv, the figures and report.md in the sweep directory.

report.md states the setup, the headline (the data saving of fine-tuning, see
:mod:`scifm.experiments._analysis`), the paper's qualitative claims checked against this
study's numbers, the figures, forgetting, and the selected runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scifm import data
from scifm._io import atomic_write_text, save_figure
from scifm.experiments._analysis import (
    LEVEL,
    Headline,
    Interval,
    curves,
    data_saving,
    forgetting,
    headline,
    interval,
    seed_curves,
    seed_values,
)
from scifm.experiments._config import Study
from scifm.experiments._plots import plot_error_vs_n, plot_forgetting, plot_gain_vs_size
from scifm.experiments._points import Method, MethodKind, Status
from scifm.experiments._results import Row, write_results

FULL = Method.finetune("full")  # the paper's fine-tuning, which its claims are about


def write_report(
    study: Study, rows: Sequence[Row], sweep: str | Path, wall_seconds: float | None = None
) -> Path:
    """Write results.csv, the figures and report.md into ``sweep``; returns report.md's path.

    ``sweep`` holds the study's test sets (``data/<task>-test.h5``), of which a picture of a
    few examples is drawn once (``data/<task>.png``).
    """
    sweep = Path(sweep)
    write_results(rows, sweep / "results.csv")
    for task in dict.fromkeys([*study.pretrain.tasks, *study.downstream]):
        picture = sweep / "data" / f"{task}.png"
        if not picture.exists():
            with data.open(sweep / "data" / f"{task}-test.h5") as ds:
                data.plot_samples(ds, picture, count=3)
    figures = {
        "error_vs_n.png": plot_error_vs_n(study, rows),
        "gain_vs_size.png": plot_gain_vs_size(study, rows),
        "forgetting.png": plot_forgetting(study, rows),
    }
    for name, fig in figures.items():
        if fig is not None:
            save_figure(fig, sweep / name)
    text = markdown(
        study,
        rows,
        gain_vs_size=figures["gain_vs_size.png"] is not None,
        forgetting_plot=figures["forgetting.png"] is not None,
        wall_seconds=wall_seconds,
    )
    return atomic_write_text(sweep / "report.md", text)


def markdown(
    study: Study,
    rows: Sequence[Row],
    *,
    gain_vs_size: bool,
    forgetting_plot: bool,
    wall_seconds: float | None = None,
) -> str:
    """The text of report.md; the flags say which optional figures exist."""
    lines = headline(study, rows)
    pre = study.pretrain
    counts = ", ".join(f"{study.tasks[t].label()}: {c}" for t, c in pre.counts().items())
    md = [
        f"# Transfer study `{study.name}`",
        "",
        f"{_grids_text(study)}; presets {', '.join(study.presets)}. "
        f"Pre-training: {counts} ({pre.epochs} epochs, batch {pre.batch_size}, lr {pre.lr:g}). "
        f"Downstream runs: {study.steps} optimizer steps each (fine-tuning and scratch alike), "
        f"batch {study.batch_size} (capped at n), learning rate chosen per (method, n"
        f"{', seed' if len(study.run_seeds) > 1 else ''}) from "
        f"{', '.join(f'{x:g}' for x in study.lr_grid)} by validation error on {study.n_val} "
        f"samples; test errors on {study.n_test} samples per task. {_seeds_text(study)}",
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
        *_headline_table(lines),
        "",
        "## Against the paper's claims (Subramanian et al. 2023)",
        "",
        *_claims(study, rows, lines),
        "",
        "## Error against downstream examples",
        "",
        "![error vs n](error_vs_n.png)",
        "",
        *_physics_section(study, rows),
    ]
    if gain_vs_size:
        md += ["## Gain against model size", "", "![gain vs size](gain_vs_size.png)", ""]
    if forgetting_plot:
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
            *_forgetting_table(rows),
            "",
        ]
    md += [
        "## The data (test examples of each task)",
        "",
        *[f"![{t}](data/{t}.png)" for t in dict.fromkeys([*pre.tasks, *study.downstream])],
        "",
        "## Selected runs",
        "",
        "| preset | task | method | n | seed | lr | val | test | retained (pre-training tasks) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.selected:
            md.append(
                f"| {r.preset} | {r.task} | {r.method.label} | {r.n} | {_seed(r.seed)} "
                f"| {r.lr:g} | {_e(r.val_rel_l2)} | {_e(r.test_rel_l2)} "
                f"| {_e(r.retained_rel_l2)} |"
            )
    md.append("")
    diverged = [r for r in rows if r.status is not Status.OK]
    if diverged:
        md.append(
            f"{len(diverged)} run(s) diverged (recorded, not selected): "
            + ", ".join(r.run for r in diverged)
            + "."
        )
        md.append("")
    total = sum(r.seconds or 0 for r in rows if r.method.kind is not MethodKind.ZERO_SHOT)
    md.append(
        f"All {len(rows)} rows are in `results.csv`. Training and evaluation time summed over "
        f"runs: {total:.0f} s"
        + (f"; wall time of this sweep invocation: {wall_seconds:.0f} s." if wall_seconds else ".")
    )
    return "\n".join(md) + "\n"


def _grids_text(study: Study) -> str:
    r, d = study.resolution, study.downstream_resolution
    if d in (0, r):
        return f"{r}x{r} grids"
    return (
        f"pre-training on {r}x{r} grids, downstream tasks on {d}x{d} (the pre-trained model is "
        f"scored zero-shot and fine-tuned on the downstream grid; scratch trains there)"
    )


def _seeds_text(study: Study) -> str:
    seeds = study.run_seeds
    if len(seeds) == 1:
        return (
            f"One seed ({seeds[0]}): error bars are the standard error over test samples, and a "
            "difference may be within the seed-to-seed spread (give `seeds` to measure it)."
        )
    return (
        f"Every run, pre-training included, is repeated over {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}: initialisation, data order, which n examples): errors "
        f"are means over seeds, intervals and error bars {LEVEL:.0%} t confidence intervals of "
        "the mean, and a claim is called only where its interval decides it."
    )


def _e(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def _seed(seed: int | None) -> str:
    return "—" if seed is None else str(seed)


def _headline_table(lines: Sequence[Headline]) -> list[str]:
    table = [
        "| preset | task | method | scratch error at n_max | fine-tuned at n_max | zero-shot "
        f"| n fine-tuning needs | examples saved | {LEVEL:.0%} interval over seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for h in lines:
        s = h.saving
        needed, saved = s.text()
        table.append(
            f"| {h.preset} | {h.task} | {h.method.label} | {_e(s.target)} (n={s.n_max}) "
            f"| {_e(s.finetune_at_n_max)} | {_e(h.zero_shot)} | {needed} | {saved} "
            f"| {h.interval.text()} |"
        )
    return table


def _physics_section(study: Study, rows: Sequence[Row]) -> list[str]:
    """Physics-informed fine-tuning against supervised fine-tuning and scratch at the same
    number of labels; nothing without physics rows."""
    data = curves(rows)
    physics = Method.physics()
    panels = [(key, panel) for key, panel in data.items() if physics in panel]
    if not panels:
        return []
    inputs = max(study.n_values)
    md = [
        "## Physics-informed fine-tuning: few labels or none",
        "",
        f"The pre-trained model fine-tuned on the residual of the task's equation over all "
        f"{inputs} training inputs, of which the first n carry their solution (n = 0: none; "
        "`scifm.train.PhysicsLoss`, preconditioned), against supervised fine-tuning (full) and "
        "scratch with the same n labelled examples. Its learning rate and checkpoint are chosen "
        f"by the residual on the {study.n_val} validation inputs: no label is used at n = 0.",
        "",
        "| preset | task | labels n | physics-informed | fine-tune (full) | scratch | zero-shot |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for (preset, task), panel in sorted(panels):
        by_n = {m: {p.n: p.error for p in pts} for m, pts in panel.items()}
        zero = next(iter(by_n.get(Method.zero_shot(), {}).values()), None)
        for n, error in sorted(by_n[physics].items()):
            md.append(
                f"| {preset} | {task} | {n} | {_e(error)} | {_e(by_n.get(FULL, {}).get(n))} "
                f"| {_e(by_n.get(Method.scratch(), {}).get(n))} | {_e(zero)} |"
            )
        free, supervised = by_n[physics].get(0), panel.get(FULL)
        if free is not None and supervised:
            match = data_saving([(supervised[-1].n, free)], supervised)
            needed = (
                f"more than {supervised[-1].n} (not reached on the grid)"
                if match.n_needed is None
                else f"{'<= ' if match.bound else 'about '}{match.n_needed:.3g}"
            )
            notes.append(
                f"- {task} ({preset}): with no label the error is {free:.3g}; supervised "
                f"fine-tuning needs {needed} labelled examples to reach it."
            )
    return [*md, "", *notes, ""] if notes else [*md, ""]


def _forgetting_table(rows: Sequence[Row]) -> list[str]:
    points = forgetting(rows)
    if not points:
        return []
    md = [
        "| preset | task | n | strategy | downstream error | change | retained error | change | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def sign(x: float | None) -> str:
        return "—" if x is None else f"{x:+.3g}"

    for f in points:
        md.append(
            f"| {f.preset} | {f.task} | {f.n} | {f.strategy} | {f.downstream:.3g} "
            f"| {sign(f.downstream_change)} | {f.retained:.3g} | {sign(f.retained_change)} "
            f"| {f.score:.3f} |"
        )
    return md


def _claims(study: Study, rows: Sequence[Row], lines: Sequence[Headline]) -> list[str]:
    """The paper's qualitative claims, checked against this study's numbers."""
    out = []
    seeded = len(study.run_seeds) > 1
    savings = [h for h in lines if h.method == FULL] or lines
    if savings:
        reached = [h for h in savings if h.saving.saving is not None]
        text = ", ".join(
            f"{h.task} ({h.preset}): "
            + (
                "not reached"
                if h.saving.saving is None
                else f"{'>=' if h.saving.bound else ''}{h.saving.saving:.3g}x"
            )
            + (f" [{h.interval.text()}]" if seeded else "")
            for h in savings
        )
        largest = max(study.n_values) / min(study.n_values)
        if seeded:
            verdicts = [h.interval.decides(10) for h in savings]
            count = (
                f"At least one order of magnitude (>= 10x) at {LEVEL:.0%} confidence in "
                f"{verdicts.count(1)} of {len(savings)} panels, below it in {verdicts.count(-1)}, "
                f"undecided by the seeds in {verdicts.count(0)}"
            )
        else:
            tenfold = [h for h in reached if h.saving.saving >= 10]
            count = f"At least one order of magnitude (>= 10x) in {len(tenfold)} of {len(savings)} panels"
        out.append(
            f"- *Fine-tuning needs orders of magnitude fewer downstream examples than scratch.* "
            f"Examples saved: {text}. {count}; fine-tuning never reaches scratch's best error "
            f"in {len(savings) - len(reached)}. The grid's n_max / n_min = {largest:g} bounds "
            "what can be measured"
            + (" (two orders need n_max / n_min >= 100)." if largest < 100 else ".")
        )
    data, by_seed = curves(rows), seed_curves(rows)
    if len(study.presets) > 1:
        parts = []
        for task in study.downstream:
            ratios = []
            for preset in study.presets:
                key = (preset, task)
                sc, ft = (seed_values(by_seed, key, m) for m in (Method.scratch(), FULL))
                per_seed = [sc[s] / ft[s] for s in sc if s in ft]
                if per_seed:
                    ratios.append((preset, interval(per_seed)))
            if len(ratios) > 1:
                parts.append(f"{task}: " + _trend(ratios, seeded))
        out.append(
            "- *Gains grow with model size* (scratch / fine-tuned error at the smallest n"
            + (", mean over seeds with its interval" if seeded else "")
            + "): "
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
                sc, ft = panel.get(Method.scratch()), panel.get(FULL)
                if not (sc and ft):
                    continue
                if not seeded:
                    beat = sum(f.error < s.error for s, f in zip(sc, ft, strict=False))
                    wins.append(f"{task} ({preset}): better at {beat} of {len(sc)} n")
                    continue
                verdicts = []
                for i in range(min(len(sc), len(ft))):
                    a, b = (
                        seed_values(by_seed, (preset, task), m, i) for m in (Method.scratch(), FULL)
                    )
                    verdicts.append(interval([a[s] - b[s] for s in a if s in b]).excludes(0))
                wins.append(
                    f"{task} ({preset}): better at {verdicts.count(1)}, worse at "
                    f"{verdicts.count(-1)}, undecided at {verdicts.count(0)} of {len(verdicts)} n"
                )
        out.append(
            f"- *A mixture-pretrained model adapts to every downstream system* (pre-trained on "
            f"{' + '.join(study.pretrain.tasks)}; fine-tuned vs scratch"
            + (f", by the {LEVEL:.0%} interval of the seeds' differences" if seeded else "")
            + "): "
            + "; ".join(wins)
            + "."
        )
    return out


def _trend(ratios: Sequence[tuple[str, Interval]], seeded: bool) -> str:
    """How the gain changes from preset to preset: by the means with one seed; with seeds a
    step counts as growing (shrinking) only where the larger preset's interval lies wholly
    above (below) the smaller's."""

    def shown(iv: Interval) -> str:
        return f"{iv.mean:.2g}x" + (f" [{iv.lo:.2g}, {iv.hi:.2g}]" if iv.lo is not None else "")

    text = " -> ".join(f"{p} {shown(iv)}" for p, iv in ratios)
    pairs = list(zip(ratios, ratios[1:], strict=False))
    if not seeded:
        grows = all(b.mean >= a.mean for (_, a), (_, b) in pairs)
        return text + (" (grows)" if grows else " (does not grow monotonically)")
    steps = []
    for (_, a), (_, b) in pairs:
        if a.lo is None or b.lo is None:
            steps.append(0)
        else:
            steps.append(1 if b.lo > a.hi else -1 if b.hi < a.lo else 0)
    if all(x == 1 for x in steps):
        verdict = "grows at every step"
    elif all(x == -1 for x in steps):
        verdict = "shrinks at every step"
    else:
        verdict = (
            f"{steps.count(1)} step(s) up, {steps.count(-1)} down, {steps.count(0)} undecided "
            "by the seeds"
        )
    return f"{text} ({verdict})"
