"""A federated study's report: per-method summaries, curves, plots and report.md.

Every number comes from the runs' own files (result.json, metrics.jsonl); nothing is re-parsed
from the CSV. "Client error" is the mean relative L2 test error over the clients' own test
distributions (for a global model, the same model on each; for local-only training, each
client's model on its own), "spread" its standard deviation across clients (fairness),
"worst" the largest; "held-out" the error on tasks no client holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scifm._io import atomic_write_text, figure, read_jsonl, save_figure
from scifm.federated._config import FederatedStudy
from scifm.federated._study import Kind, Run, bad_clients, robust_run

MB = 2**20
DOWNSTREAM = (Kind.FINETUNE, Kind.SCRATCH)
SEPARATE = (*DOWNSTREAM, Kind.FCCL)  # reported in their own sections


@dataclass(frozen=True)
class Summary:
    """One method's final errors and cost."""

    method: str
    kind: str
    errors: dict[str, float]  # per client: own test set
    heldout: float | None
    inter: float | None  # local-only: a client's model on the other clients' distributions
    mb_sent: float  # per client, whole run
    seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.errors.values())))

    @property
    def spread(self) -> float:
        return float(np.std(list(self.errors.values())))

    @property
    def worst(self) -> float:
        return float(max(self.errors.values()))


def _heldout(study, result) -> float | None:
    values = [result["test"][t] for t in study.heldout if t in result["test"]]
    return float(np.mean(values)) if values else None


def summaries(study: FederatedStudy, finished: Sequence[tuple[Run, dict]]) -> list[Summary]:
    """One summary per algorithm, baseline and robustness run (local-only runs as one)."""
    out, local = [], []
    for run, result in finished:
        if run.kind in SEPARATE:
            continue
        if run.kind == Kind.LOCAL:
            local.append((run, result))
            continue
        errors = {c: result["test"][c] for c in study.clients}
        out.append(
            Summary(
                run.name if run.kind != Kind.ROBUST else run.label,
                run.kind,
                errors,
                _heldout(study, result),
                None,
                # centralised training moves the data instead, once
                data_megabytes(study)
                if run.kind == Kind.CENTRALISED
                else result["bytes_sent_per_client"] / MB,
                result["seconds"],
            )
        )
    if local:
        own = {run.client: result["test"][run.client] for run, result in local}
        others = [
            result["test"][c] for run, result in local for c in study.clients if c != run.client
        ]
        held = [h for _, result in local if (h := _heldout(study, result)) is not None]
        out.append(
            Summary(
                "local-only",
                Kind.LOCAL,
                own,
                float(np.mean(held)) if held else None,
                float(np.mean(others)) if others else None,
                0.0,
                sum(result["seconds"] for _, result in local),
            )
        )
    return out


def curves(
    study: FederatedStudy, out: Path, finished
) -> dict[str, list[tuple[int, float, float, float]]]:
    """Per method: ``(round, MB sent per client so far, mean client error, held-out error)``
    at every evaluation (local-only: the mean over clients of each one's own error)."""
    result: dict[str, list] = {}
    local: dict[int, list] = {}
    for run, _ in finished:
        if run.kind in SEPARATE:
            continue
        rows = [r for r in read_jsonl(out / "runs" / run.name / "metrics.jsonl") if "test" in r]
        if run.kind == Kind.LOCAL:
            for r in rows:
                local.setdefault(r["round"], []).append(
                    (r["test"][run.client], _heldout(study, r) or math.nan)
                )
            continue
        name = run.name if run.kind != Kind.ROBUST else run.label
        result[name] = [
            (
                r["round"],
                r["bytes_sent"] / MB,
                float(np.mean([r["test"][c] for c in study.clients])),
                _heldout(study, r) or math.nan,
            )
            for r in rows
        ]
    if local:
        result["local-only"] = [
            (k, 0.0, float(np.mean([v[0] for v in vals])), float(np.mean([v[1] for v in vals])))
            for k, vals in sorted(local.items())
        ]
    return result


def data_megabytes(study: FederatedStudy) -> float:
    """What pooling moves: the mean client's training set in float32 (inputs, solution,
    coefficients), in MiB."""
    per_sample = (2 * study.resolution**2 + 6) * 4
    return float(np.mean([sum(h.values()) for h in study.clients.values()])) * per_sample / MB


# -- plots ---------------------------------------------------------------------------------------
def _main_methods(study, curve):
    return [m for m in curve if not m.startswith("fedavg + ")]


def plot_error_vs_round(study, curve):
    panels = 2 if study.heldout else 1
    fig = figure(figsize=(5.2 * panels, 3.8))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for k, method in enumerate(_main_methods(study, curve)):
        pts = curve[method]
        style = dict(color=f"C{k}", marker="o", ms=3, label=method)
        axes[0].plot([p[0] for p in pts], [p[2] for p in pts], **style)
        if study.heldout:
            axes[1].plot([p[0] for p in pts], [p[3] for p in pts], **style)
    axes[0].set_title("clients' own distributions")
    if study.heldout:
        axes[1].set_title(f"held out: {', '.join(study.heldout)}")
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_ylabel("relative L2 test error")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_client_spread(study, items: Sequence[Summary]):
    items = [s for s in items if s.kind != Kind.ROBUST]
    fig = figure(figsize=(1.2 * len(items) + 2.5, 3.8))
    ax = fig.subplots()
    for j, client in enumerate(study.clients):
        ax.scatter(
            range(len(items)),
            [s.errors[client] for s in items],
            color=f"C{j}",
            marker="os^vD<>"[j % 7],
            label=client,
            zorder=3,
        )
    ax.bar(range(len(items)), [s.mean for s in items], color="0.85", label="mean")
    ax.set_xticks(range(len(items)), [s.method for s in items], rotation=30, ha="right")
    ax.set_ylabel("relative L2 test error (own distribution)")
    ax.set_title("error per client")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_communication(study, curve):
    fig = figure(figsize=(5.4, 3.8))
    ax = fig.subplots()
    k = 0
    for method in _main_methods(study, curve):
        pts = curve[method]
        if method in ("centralised", "local-only"):
            continue
        ax.plot(
            [p[1] for p in pts], [p[2] for p in pts], marker="o", ms=3, color=f"C{k}", label=method
        )
        k += 1
    if "centralised" in curve:
        final = curve["centralised"][-1][2]
        ax.scatter([data_megabytes(study)], [final], marker="*", s=140, color="k", zorder=3,
                   label="centralised (its data moved once)")  # fmt: skip
    ax.set_xlabel("MiB sent per client (cumulative)")
    ax.set_ylabel("mean client test error")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_robustness(study, errors: dict[tuple[str, str], float]):
    attacks = ["none", *study.robustness.attacks]
    rules = list(study.robustness.aggregators)
    fig = figure(figsize=(1.6 * len(attacks) + 2.5, 3.8))
    ax = fig.subplots()
    width = 0.8 / len(rules)
    for j, rule in enumerate(rules):
        ax.bar(
            [i + (j - (len(rules) - 1) / 2) * width for i in range(len(attacks))],
            [errors[(rule, a)] for a in attacks],
            width,
            label=rule,
            color=f"C{j}",
        )
    ax.set_xticks(range(len(attacks)), [f"attack: {a}" for a in attacks])
    ax.set_yscale("log")
    ax.set_ylabel("mean client test error")
    ax.set_title(f"FedAvg with {study.robustness.bad} bad of {len(study.clients)} clients")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def fccl_section(study, runs) -> list[str]:
    """The FCCL+ table: each variant's models on their own and the others' distributions."""
    f = study.fccl
    presets = {c: f.presets.get(c, study.preset) for c in study.clients}
    lines = [
        "## FCCL+: heterogeneous models collaborating on public inputs",
        "",
        "Models: "
        + ", ".join(f"{c} {p}" for c, p in presets.items())
        + f". Public: {f.n_public} unlabelled inputs of {', '.join(f.public)}; "
        f"{f.collab_steps} collaboration step(s) on {f.public_batch} of them per round. Each "
        "client's model on its own distribution (own), on the other clients' (others), held out.",
        "",
        "| variant | " + " | ".join(study.clients) + " | own (mean) | others (mean) | held-out "
        "| MiB sent per client |",
        "| --- " * (len(study.clients) + 5) + "|",
    ]
    for run, result in runs:
        test = result["test"]
        own = [test[c][c] for c in study.clients]
        others = [test[c][t] for c in study.clients for t in study.clients if t != c]
        held = [test[c][t] for c in study.clients for t in study.heldout]
        lines.append(
            f"| {run.algorithm} | "
            + " | ".join(_g(v) for v in own)
            + f" | {_g(float(np.mean(own)))} | {_g(float(np.mean(others)) if others else None)} "
            f"| {_g(float(np.mean(held)) if held else None)} "
            f"| {result['bytes_sent_per_client'] / MB:.3g} |"
        )
    return [*lines, ""]


def downstream_errors(study, finished) -> dict[str, dict[int, float]]:
    """``{start: {n: test error}}`` of the downstream runs (start: a source run or scratch)."""
    table: dict[str, dict[int, float]] = {}
    for run, result in finished:
        if run.kind in DOWNSTREAM:
            start = run.source if run.kind == Kind.FINETUNE else "scratch"
            table.setdefault(start, {})[run.n] = result["test"][study.downstream.task]
    return table


def plot_downstream(study, table):
    fig = figure(figsize=(5.2, 3.8))
    ax = fig.subplots()
    for k, (start, errors) in enumerate(table.items()):
        ns = sorted(errors)
        style = dict(color="k", ls="--") if start == "scratch" else dict(color=f"C{k}")
        ax.plot(ns, [errors[n] for n in ns], marker="o", label=start, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"downstream examples ({study.downstream.task})")
    ax.set_ylabel("relative L2 test error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- markdown ------------------------------------------------------------------------------------
def _g(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def write_report(study: FederatedStudy, out: Path, finished: Sequence[tuple[Run, dict]]) -> Path:
    """Write report.md and the plots into ``out``; the path of report.md."""
    items = summaries(study, finished)
    curve = curves(study, out, finished)
    main = [s for s in items if s.kind != Kind.ROBUST]
    lines = [
        f"# Federated study `{study.name}`",
        "",
        f"{len(study.clients)} clients, {study.preset} at {study.resolution}x{study.resolution}, "
        f"{study.rounds} rounds of {study.local_steps} local steps (batch {study.batch_size}, "
        f"{study.optimizer}, lr {study.lr:g} with a cosine decay); centralised training takes "
        f"the same {study.rounds * study.local_steps} steps with batches of "
        f"{len(study.clients) * study.batch_size} from the union.",
        "",
        "| client | training samples |",
        "| --- | --- |",
        *(
            f"| {c} | {', '.join(f'{t} {n}' for t, n in h.items())} |"
            for c, h in study.clients.items()
        ),
        "",
        "## Federated against centralised and local-only training",
        "",
        "Relative L2 test error; each client's error is on its own distribution. "
        + (f"Held out: {', '.join(study.heldout)}. " if study.heldout else "")
        + "MiB: what each client sends over the run (and receives, the same); for centralised "
        "training, its training data, moved once to be pooled.",
        "",
        "| method | " + " | ".join(study.clients) + " | mean | spread | worst | held-out "
        "| others' distributions | MiB per client | seconds |",
        "| --- " * (len(study.clients) + 8) + "|",
    ]
    for s in main:
        cells = [_g(s.errors[c]) for c in study.clients]
        lines.append(
            f"| {s.method} | {' | '.join(cells)} | {_g(s.mean)} | {_g(s.spread)} | {_g(s.worst)} "
            f"| {_g(s.heldout)} | {_g(s.inter)} | {s.mb_sent:.3g} | {s.seconds:.0f} |"
        )
    central = next((s for s in main if s.kind == Kind.CENTRALISED), None)
    local = next((s for s in main if s.kind == Kind.LOCAL), None)
    feds = [s for s in main if s.kind == Kind.FEDERATED]
    lines += [""]
    if central and feds:
        best = min(feds, key=lambda s: s.mean)
        lines.append(
            f"- Best federated method: **{best.method}**, mean client error {best.mean:.3g} "
            f"against centralised {central.mean:.3g} ({best.mean / central.mean:.2f}x); "
            + ", ".join(f"{s.method} {s.mean / central.mean:.2f}x" for s in feds)
            + "."
        )
        lines.append(
            f"- Pooling would move {data_megabytes(study):.3g} MiB of data per client once; "
            f"federated training sends {best.mb_sent:.3g} MiB of weights per client "
            f"({best.method})."
        )
    if local:
        lines.append(
            f"- Local-only models: {local.mean:.3g} on their own distribution, "
            f"{_g(local.inter)} on the other clients'"
            + (f", {_g(local.heldout)} held out" if study.heldout else "")
            + ": what a lab gets alone."
        )
    lines += [
        "",
        "![error against round](error_vs_round.png)",
        "",
        "![error per client](client_spread.png)",
        "",
        "![communication against error](communication.png)",
        "",
    ]
    save_figure(plot_error_vs_round(study, curve), out / "error_vs_round.png")
    save_figure(plot_client_spread(study, main), out / "client_spread.png")
    save_figure(plot_communication(study, curve), out / "communication.png")
    r = study.robustness
    if r.attacks:
        by_run = {run.name: result for run, result in finished}
        errors = {
            (rule, attack): float(
                np.mean([by_run[robust_run(study, rule, attack)]["test"][c] for c in study.clients])
            )
            for rule in r.aggregators
            for attack in ("none", *r.attacks)
        }
        bad = ", ".join(np.asarray(list(study.clients))[bad_clients(study)])
        lines += [
            "## Robustness",
            "",
            f"FedAvg with each aggregation rule; bad client(s): {bad}. Mean client error "
            "over every client's test distribution, the bad client's own included.",
            "",
            "| aggregation | " + " | ".join(f"attack: {a}" for a in ("none", *r.attacks)) + " |",
            "| --- " * (len(r.attacks) + 2) + "|",
        ]
        for rule in r.aggregators:
            lines.append(
                f"| {rule} | "
                + " | ".join(_g(errors[(rule, a)]) for a in ("none", *r.attacks))
                + " |"
            )
        lines += ["", "![robustness](robustness.png)", ""]
        save_figure(plot_robustness(study, errors), out / "robustness.png")
    fccl_runs = [(run, result) for run, result in finished if run.kind == Kind.FCCL]
    if fccl_runs:
        lines += fccl_section(study, fccl_runs)
    d = study.downstream
    if d.task:
        table = downstream_errors(study, finished)
        sources = list(table)
        lines += [
            "## Downstream: fine-tuning each model on a task no client holds",
            "",
            f"{d.task}: {d.steps} steps at lr {d.lr:g} for every n (batch min({study.batch_size}, "
            f"n)); the best of {d.validations} checkpoints by validation error; relative L2 "
            f"error on {study.n_test} test samples.",
            "",
            "| start | " + " | ".join(f"n = {n}" for n in d.n_values) + " |",
            "| --- " * (len(d.n_values) + 1) + "|",
            *(
                f"| {s} | " + " | ".join(_g(table[s].get(n)) for n in d.n_values) + " |"
                for s in sources
            ),
            "",
        ]
        central = table.get("centralised")
        for s in sources:
            if s in ("centralised", "scratch") or central is None:
                continue
            ratios = ", ".join(f"n = {n}: {table[s][n] / central[n]:.2f}x" for n in d.n_values)
            lines.append(f"- {s} fine-tuned against centralised fine-tuned: {ratios}.")
        lines += ["", "![downstream](downstream.png)", ""]
        save_figure(plot_downstream(study, table), out / "downstream.png")
    lines += [
        "## Files",
        "",
        "`results.csv` (one row per run and test set), `runs/NAME/` (each run: config.json, "
        "metrics.jsonl per round, checkpoint.eqx of the final global model, result.json), "
        "`study.json`.",
        "",
    ]
    return atomic_write_text(out / "report.md", "\n".join(lines))
