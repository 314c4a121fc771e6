"""Pack the pre-trained model of a finished sweep as a model shipped with scifm, with its card.

``make pretrained`` runs the shipped study ``pretrained`` and calls :func:`pack_pretrained`,
which copies the sweep's pre-trained weights into ``scifm/models/pretrained/<NAME>/`` and
writes the model card from measurements: test error per pre-training task at the training
resolution (the sweep's test sets) and at others (the same continuous problems sampled on
other grids, generated here), the zero-shot error and the examples fine-tuning saves on the
study's downstream tasks, and the sha256 of the weights (a rerun on the same CPU gives the
same file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from scifm import __version__, data
from scifm._checks import UserError
from scifm._io import atomic_write_text
from scifm._runs import MODEL, WEIGHTS
from scifm.experiments._analysis import curves, headline
from scifm.experiments._points import Method, Point, PointKind
from scifm.experiments._results import read_results
from scifm.experiments._sweep import _finished, _saved_study, data_path
from scifm.train import evaluate, load

RESOLUTIONS = (32, 64, 128)
WEAK = 0.3  # a pre-training task the card calls not learned above this test error


def pack_pretrained(
    sweep: str | Path,
    name: str,
    into: str | Path,
    *,
    resolutions: tuple[int, ...] = RESOLUTIONS,
    n_test: int | None = None,
) -> Path:
    """Make the shipped model ``name`` in ``into/name`` from the finished one-preset sweep
    ``sweep``: weights, ``model.json``, ``card.json`` and ``card.md``; returns its folder.

    ``n_test`` samples per task at each of ``resolutions`` (default: the study's ``n_test``).

    Raises:
        ValueError: the sweep is not finished, has several presets or seeds, or its
            pre-training diverged.
    """
    sweep, into = Path(sweep), Path(into)
    study = _saved_study(sweep)
    if len(study.presets) != 1 or len(study.run_seeds) != 1:
        raise UserError(
            f"{sweep}: a shipped model comes from a study of one preset and one seed, this one "
            f"has presets {list(study.presets)} and seeds {list(study.run_seeds)}"
        )
    preset = study.presets[0]
    point = Point(PointKind.PRETRAIN, preset)
    result = _finished(sweep, point)
    results = sweep / "results.csv"
    if result is None or not results.exists():
        raise UserError(f"{sweep} is not a finished sweep (run `scifm sweep` on it first)")
    if result["status"] != "ok":
        raise UserError(f"{sweep}: its pre-training diverged; nothing to ship")
    run = sweep / point.directory
    model, hyper = load(run)
    n_test = n_test or study.n_test
    pre = study.pretrain
    by_resolution = {}
    with tempfile.TemporaryDirectory() as tmp:
        for resolution in resolutions:
            errors = {}
            for task in pre.tasks:
                if resolution == study.resolution and n_test <= study.n_test:
                    path = data_path(sweep, task, "test")
                else:  # the test problems of the sweep, sampled on another grid
                    path = data.generate(
                        study.tasks[task].build(),
                        n_test,
                        resolution,
                        study.data_seed(task, "test"),
                        Path(tmp) / f"{task}-{resolution}.h5",
                    )
                fields = data.FieldSet.load(path, limit=n_test)
                errors[task] = round(evaluate(model, fields)["rel_l2_mean"], 5)
            by_resolution[str(resolution)] = errors
    rows = read_results(results)
    panels = curves(rows)
    saved = {h.task: h for h in headline(study, rows) if h.method == Method.finetune("full")}
    downstream = []
    for task in study.downstream:
        panel = panels.get((preset, task), {})
        zero = panel.get(Method.zero_shot())
        entry = {
            "task": task,
            "label": study.tasks[task].label(),
            "shift": study.tasks[task].shift,
            "zero_shot": None if not zero else round(zero[0].error, 5),
            "finetune": {
                str(p.n): round(p.error, 5) for p in panel.get(Method.finetune("full"), [])
            },
            "scratch": {str(p.n): round(p.error, 5) for p in panel.get(Method.scratch(), [])},
        }
        if task in saved:
            needed, factor = saved[task].saving.text()
            entry.update(n_finetuning_needs=needed, examples_saved=factor)
        downstream.append(entry)
    weights = (run / WEIGHTS).read_bytes()
    card = {
        "name": name,
        "preset": preset,
        "parameters": result["parameters"],
        "modes": hyper["modes"],
        "resolution": study.resolution,
        "input_names": hyper["input_names"],
        "output_names": hyper["output_names"],
        "trained_on": " + ".join(pre.tasks),
        "tasks": {t: study.tasks[t].label() for t in pre.tasks},
        "samples": pre.counts(),
        "epochs": pre.epochs,
        "batch_size": pre.batch_size,
        "lr": pre.lr,
        "steps": result["steps"],
        "train_seconds": round(result["train_seconds"]),
        "seed": study.seed,
        "study": study.name,
        "test_samples": n_test,
        "test_rel_l2": by_resolution[str(study.resolution)],
        "test_rel_l2_by_resolution": by_resolution,
        "downstream": downstream,
        "sha256": hashlib.sha256(weights).hexdigest(),
        "bytes": len(weights),
        "scifm_version": __version__,
    }
    target = into / name
    staging = into / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(run / WEIGHTS, staging / WEIGHTS)
    shutil.copyfile(run / MODEL, staging / MODEL)
    (staging / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    atomic_write_text(staging / "card.md", card_markdown(card))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def card_markdown(card: dict) -> str:
    """The model card for people, from ``card.json``."""
    res = card["resolution"]
    tasks = list(card["tasks"])
    resolutions = list(card["test_rel_l2_by_resolution"])
    md = [
        f"# `pretrained:{card['name']}`",
        "",
        f"An FNO (`{card['preset']}`, {card['parameters']:,} parameters, float32, "
        f"{card['bytes'] / 2**20:.1f} MiB) pre-trained at {res}x{res} on "
        + ", ".join(f"{card['samples'][t]} {card['tasks'][t]}" for t in tasks)
        + f" samples ({card['epochs']} epochs, {card['steps']} steps of batch "
        f"{card['batch_size']}, Adam lr {card['lr']:g}, seed {card['seed']}; "
        f"{card['train_seconds']} s of training). Inputs: "
        + ", ".join(card["input_names"])
        + " and the six constant coefficients; output: "
        + ", ".join(card["output_names"])
        + ". Made by the shipped study `"
        + card["study"]
        + "` (`make pretrained`); weights sha256 `"
        + card["sha256"][:16]
        + "...`.",
        "",
        "## Test error (mean relative L2)",
        "",
        f"On {card['test_samples']} test problems per task, the same continuous problems sampled "
        "on each grid:",
        "",
        "| task | " + " | ".join(f"{r}x{r}" for r in resolutions) + " |",
        "| --- | " + " | ".join("---" for _ in resolutions) + " |",
    ]
    for t in tasks:
        cells = [f"{card['test_rel_l2_by_resolution'][r][t]:.3g}" for r in resolutions]
        md.append(f"| {card['tasks'][t]} | " + " | ".join(cells) + " |")
    md += [
        "",
        "## What it saves on tasks it never saw",
        "",
        "Fine-tuned (all weights; the adapter for new input fields) against trained from scratch, "
        "the same optimiser steps, test error by number of labelled examples n:",
        "",
    ]
    for d in card["downstream"]:
        ns = sorted(set(d["finetune"]) | set(d["scratch"]), key=int)
        if "examples_saved" not in d:
            verdict = "."
        elif d["n_finetuning_needs"] == "not reached":
            verdict = (
                "; fine-tuning does not reach scratch's error at the largest n (no examples "
                "saved on this grid of n)."
            )
        else:
            verdict = (
                f"; fine-tuning reaches scratch's error at the largest n with "
                f"{d['n_finetuning_needs']} examples ({d['examples_saved']} saved)."
            )
        md += [
            f"**{d['task']}**: {d['label']} ({d['shift']}); zero-shot error "
            + ("—" if d["zero_shot"] is None else f"{d['zero_shot']:.3g}")
            + verdict,
            "",
            "| n | " + " | ".join(str(n) for n in ns) + " |",
            "| --- | " + " | ".join("---" for _ in ns) + " |",
            "| fine-tuned | " + " | ".join(_e(d["finetune"].get(n)) for n in ns) + " |",
            "| scratch | " + " | ".join(_e(d["scratch"].get(n)) for n in ns) + " |",
            "",
        ]
    own = card["test_rel_l2"]
    weak = [t for t in tasks if own[t] > WEAK]
    by_grid = card["test_rel_l2_by_resolution"]
    spread = max(abs(by_grid[r][t] / own[t] - 1) for r in resolutions for t in tasks)
    md += ["## What it is not good at", ""]
    if weak:
        md.append(
            f"- Its own pre-training tasks where its test error is above {WEAK:g}: "
            + ", ".join(f"{card['tasks'][t]} ({own[t]:.3g})" for t in weak)
            + ": it has not learned them in this training; fine-tune it before use there."
        )
    md += [
        "- Periodic boundaries only: it has never seen a wall or a Dirichlet boundary (PDEBench's "
        "Darcy files are not its problems).",
        "- Problems outside its ranges: the zero-shot errors above are what it does unaided; "
        "fine-tune it.",
        (
            f"- Other grids: on these problems its error moves by at most {spread:.1%} between "
            f"{resolutions[0]}x{resolutions[0]} and {resolutions[-1]}x{resolutions[-1]} (their "
            "sources are band-limited, so each grid samples the same function); data with "
            f"detail above its {card['modes']} Fourier modes per direction is another matter."
            if spread < 0.05
            else f"- Other grids than {res}x{res} cost accuracy (the table above)."
        ),
        "- One seed and one size: its numbers are one training run's; the transfer studies with "
        "`seeds` measure the spread.",
        "",
    ]
    return "\n".join(md)


def _e(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"
