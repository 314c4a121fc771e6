"""The seeds axis of studies: the statistics on synthetic results, then a tiny sweep."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _studies import ONE_RATE

from scifm import data, experiments
from scifm.experiments import Method, Point, PointKind, load_study
from scifm.experiments._markdown import markdown
from scifm.experiments._sweep import _training_examples, data_path

# Student's t quantile at 2 degrees of freedom in closed form, (2p - 1) / sqrt(2 p (1 - p)),
# at p = 97.5%: 4.303 in the tables
T_975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)


def test_interval_is_the_t_interval_of_the_mean():
    iv = experiments.interval([1.0, 2.0, 3.0])
    half = T_975_2 * 1.0 / math.sqrt(3)  # sample sd 1
    assert iv.mean == 2.0 and iv.seeds == 3
    assert iv.lo == pytest.approx(2 - half, rel=1e-12) and iv.hi == pytest.approx(2 + half)
    assert experiments.interval([0.3]) == experiments.Interval(0.3, None, None, 1)
    assert iv.excludes(-1) == 1 and iv.excludes(5) == -1 and iv.excludes(2) == 0


def test_intervals_cover_the_true_mean_at_their_level():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.25, 0.05, size=(8_000, 4))  # 4 seeds of a noisy error
    covered = [(iv := experiments.interval(row)).lo <= 0.25 <= iv.hi for row in draws]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.01)  # binomial sd 0.0024


def _row(method, n, seed, error, lr=1e-3, val=None, selected_by=None):
    strategy = "full" if method is experiments.MethodKind.FINETUNE else None
    return experiments.Row(
        preset="fno-64k",
        task="poisson-ood",
        system="poisson",
        shift="",
        method=Method(method, strategy),
        n=n,
        lr=lr,
        status=experiments.Status.OK,
        run=f"runs/{method}/{n}/{seed}/{lr}",
        seed=seed,
        val_rel_l2=error if val is None else val,
        test_rel_l2=error,
        test_rel_l2_std=0.01,
        test_samples=64,
        parameters=1000,
    )


# per seed: scratch reaches 0.1 at n = 16; fine-tuning reaches it at n = 8, 4 and 8 (exactly
# on the grid: savings 2x, 4x and 2x)
FINETUNE = {0: [0.4, 0.2, 0.1, 0.05], 1: [0.2, 0.1, 0.05, 0.04], 2: [0.3, 0.2, 0.1, 0.08]}
SCRATCH = {0: [0.8, 0.4, 0.2, 0.1], 1: [0.9, 0.5, 0.3, 0.1], 2: [0.7, 0.4, 0.2, 0.1]}
GRID = (2, 4, 8, 16)


def _rows(finetune=FINETUNE, scratch=SCRATCH):
    s, f = experiments.MethodKind.SCRATCH, experiments.MethodKind.FINETUNE
    points = []
    for seed in finetune:
        for i, n in enumerate(GRID):
            points.append(_row(s, n, seed, scratch[seed][i]))
            points.append(_row(f, n, seed, finetune[seed][i]))
            # a second learning rate, worse on validation: each seed selects its own
            points.append(_row(f, n, seed, 0.01, lr=3e-3, val=9.0))
    return experiments._results._select(points)


def test_curves_average_each_seeds_selected_run():
    rows = _rows()
    assert sum(r.selected for r in rows) == 3 * 4 * 2  # the 3e-3 rows lose in every seed
    panel = experiments.curves(rows)[("fno-64k", "poisson-ood")]
    at_2 = panel[Method.finetune("full")][0]
    assert at_2.n == 2 and at_2.seeds == 3 and at_2.error == pytest.approx(0.3)
    half = T_975_2 * 0.1 / math.sqrt(3)  # the three errors 0.4, 0.2, 0.3: sd 0.1
    assert (at_2.lo, at_2.hi) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    by_seed = experiments.seed_curves(rows)
    assert sorted(by_seed) == [0, 1, 2]
    assert [
        p.error for p in by_seed[1][("fno-64k", "poisson-ood")][Method.finetune("full")]
    ] == FINETUNE[1]


def test_the_headline_saving_has_the_interval_of_the_seeds_log_savings():
    study = load_study("demo", ["seeds=[0, 1, 2]", 'downstream=["poisson-ood"]'])
    rows = _rows()
    (h,) = experiments.headline(study, rows)
    iv = h.interval
    # log2 savings 1, 2, 1: mean 4/3, sd 1/sqrt(3), half width t * sd / sqrt(3) = t / 3
    assert iv.seeds == 3 and not iv.bound and iv.unreached == 0
    assert iv.lo == pytest.approx(2 ** (4 / 3 - T_975_2 / 3))
    assert iv.hi == pytest.approx(2 ** (4 / 3 + T_975_2 / 3))
    assert iv.decides(2) == 0 and iv.decides(0.5) == 1 and iv.decides(10) == -1
    assert iv.text() == f"{iv.lo:.3g}x to {iv.hi:.3g}x (3 seeds)"
    # the point estimate is the saving of the mean curves (scratch 0.1 at n = 16)
    assert h.saving.target == pytest.approx(0.1) and h.saving.n_max == 16
    text = markdown(study, rows, gain_vs_size=False, forgetting_plot=False)
    assert "95% interval over seeds |" in text and iv.text() in text
    assert "below it in 1, undecided by the seeds in 0" in text and "repeated over 3 seeds" in text


def test_a_seed_that_never_reaches_or_only_bounds_the_saving_is_said():
    never = {**FINETUNE, 2: [0.9, 0.8, 0.7, 0.6]}
    study = load_study("demo", ["seeds=[0, 1, 2]", 'downstream=["poisson-ood"]'])
    rows = _rows(finetune=never)
    (h,) = experiments.headline(study, rows)
    assert h.interval.text() == "1 of 3 seeds never reach it" and h.interval.decides(1) == 0
    early = {**FINETUNE, 2: [0.05, 0.04, 0.03, 0.02]}  # beats 0.1 already at n = 2: >= 8x
    rows = _rows(finetune=early)
    (h,) = experiments.headline(study, rows)
    assert h.interval.bound and h.interval.text().startswith(">= ")
    assert h.interval.decides(1000) == 0  # a lower bound cannot show the saving is small


def test_two_seed_sweep_extends_a_one_seed_sweep_and_reports_intervals(tmp_path):
    tiny = ONE_RATE
    out = tmp_path / "s"
    experiments.sweep(load_study("demo", tiny), out, progress=False)
    done = {p: p.stat().st_mtime_ns for p in out.glob("runs/**/point.json")}
    seeded = load_study("demo", [*tiny, "seeds=[0, 1]"])
    report = experiments.sweep(seeded, out, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())  # seed 0: the old points
    rows = experiments.read_results(out / "results.csv")
    assert sorted({r.seed for r in rows}) == [0, 1] and len(rows) == 2 * (1 + 2 * 2)
    assert (out / "runs/pretrain/fno-64k-s1/point.json").exists()
    for r in rows:
        assert r.selected and 0 < r.test_rel_l2 < 10
        assert r.run.endswith("-s1") == (r.seed == 1)
    for run in ("pretrain/fno-64k", "fno-64k/poisson-ood/finetune-full/n00004-lr0.001"):
        assert json.loads((out / "runs" / run / "config.json").read_text())["seed"] == 0
        assert json.loads((out / "runs" / f"{run}-s1" / "config.json").read_text())["seed"] == 1
    text = report.read_text()
    assert "repeated over 2 seeds (0, 1" in text and "(2 seeds) |" in text
    # seed 1 draws its own nested examples; the study's seed takes the first n
    with data.open(data_path(out, "poisson-ood", "train")) as file:
        kind = PointKind.SCRATCH
        first = _training_examples(out, Point(kind, "fno-64k", "poisson-ood", 4, 1e-3))
        np.testing.assert_array_equal(first.inputs, file.inputs[:4])
        four, eight = (
            _training_examples(out, Point(kind, "fno-64k", "poisson-ood", n, 1e-3, seed=1))
            for n in (4, 8)
        )
        np.testing.assert_array_equal(four.inputs, eight.inputs[:4])
        assert not np.array_equal(four.inputs, file.inputs[:4])
        physics = _training_examples(
            out, Point(PointKind.PHYSICS, "fno-64k", "poisson-ood", 4, 1e-3, seed=1)
        )
        np.testing.assert_array_equal(physics.inputs[:4], four.inputs)
        assert np.isnan(physics.outputs[4:]).all() and np.isfinite(physics.outputs[:4]).all()
