"""Studies: configs, the sweep end to end (inline, processes, submitit), resumption, report maths.

The fault-injection test stops a tiny sweep at each kind of save point (a run's saved state, its
result.json, a point.json, before the report), reruns it, and compares results.csv and every
point.json with an uninterrupted sweep's, timings aside.
"""

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace

import jax
import numpy as np
import pytest
from _studies import TINY

from scifm import RunConflict, RunError, data, experiments, pdes
from scifm._runs import RunDirectory
from scifm.cli import main
from scifm.experiments import Method, Point, Row, Status, Study, _sweep, load_study


def scifm(capsys, *args):
    """Run the command line in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()  # what came before is not this command's
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _process(*args):
    """Run the command line as a process of its own (for a sweep that is killed and resumed)."""
    return subprocess.run(
        [sys.executable, "-m", "scifm.cli", *args], capture_output=True, text=True
    )


def _sets(overrides):
    return sum((["--set", o] for o in overrides), [])


# -- configs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", experiments.builtin_studies())
def test_shipped_studies_round_trip(name, tmp_path):
    study = load_study(name)
    assert Study.from_dict(json.loads(json.dumps(study.to_dict()))) == study
    (tmp_path / "study.json").write_text(json.dumps(study.to_dict(), indent=2))
    assert load_study(tmp_path / "study.json") == study


def test_base_and_overrides(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'base = "demo"\nname = "mine"\nsteps = 7\n[pretrain]\nepochs = 3\n'
        '[tasks.helmholtz-far]\nsystem = "helmholtz"\nomega_range = [20, 30]\n'
    )
    study = load_study(path, ["pretrain.lr=0.01", 'downstream=["helmholtz-far"]'])
    demo = load_study("demo")
    assert study.name == "mine" and study.steps == 7
    assert study.pretrain.epochs == 3 and study.pretrain.lr == 0.01
    assert study.pretrain.tasks == demo.pretrain.tasks  # the rest of the table comes from the base
    assert study.tasks["helmholtz-far"].build() == pdes.Helmholtz(omega_range=(20, 30))
    assert study.tasks["advdiff"] == demo.tasks["advdiff"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("colour=1", "unknown key 'colour'; valid keys: name, tasks, pretrain"),
        ("pretrain.speed=1", "unknown key 'pretrain.speed'; valid keys: tasks, proportions"),
        ('presets=["fno-3"]', "unknown model preset 'fno-3'; valid presets: fno-64k, fno-1m"),
        ('downstream=["mars"]', "downstream: unknown task 'mars'; defined tasks: poisson"),
        ("tasks.poisson.system='maxwell'", "unknown system 'maxwell'; valid systems: poisson"),
        ("tasks.poisson.omega_range=[1, 2]", "unknown option 'omega_range' for system poisson"),
        ('strategies=["magic"]', "unknown fine-tuning strategy 'magic'; valid strategies: full"),
        ('methods=["guess"]', "unknown method 'guess'; valid methods: zero-shot, scratch"),
        ("steps='many'", "steps must be int, got 'many'"),
        (
            "pretrain.proportions=[1, 2, 3]",
            "pretrain.proportions must be 2 positive numbers",
        ),
        ('presets=["fno-4m"]', "preset fno-4m keeps 16 modes; it needs resolution >= 32, got 16"),
    ],
)
def test_bad_configs_name_the_valid_choices(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_study("demo", [override, "resolution=16" if "fno-4m" in override else "seed=0"])


# what a sweep would otherwise trip on in data generation, after pre-training, or as two points
# in one directory: refused when the study is made, the key, the value and what is allowed named
REFUSED = [
    ("resolution=8", "resolution must be an even integer >= 16, got 8"),
    ("resolution=33", "resolution must be an even integer >= 16, got 33"),
    ("lr_grid=[1e-3, nan]", "lr_grid[1] must be a finite number > 0, got nan"),
    ("lr_grid=[inf]", "lr_grid[0] must be a finite number > 0, got inf"),
    ("lr_grid=[0]", "lr_grid[0] must be a finite number > 0, got 0.0"),
    ("lr_grid=[-1e-3]", "lr_grid[0] must be a finite number > 0, got -0.001"),
    ("lr_grid=[]", "lr_grid must list at least one value, got none"),
    ("lr_grid=[1e-3, 0.001]", "lr_grid lists 0.001 twice; give each entry once"),
    (
        "lr_grid=[1e-3, 0.0010000001]",
        "lr_grid: 0.001 and 0.0010000001 would share the run directories *-lr0.001; make them "
        "differ in their first 6 significant digits",
    ),
    ("pretrain.lr=nan", "pretrain.lr must be a finite number > 0, got nan"),
    ("pretrain.lr=0", "pretrain.lr must be a finite number > 0, got 0.0"),
    ('downstream=["advdiff", "advdiff"]', "downstream lists 'advdiff' twice; give each entry"),
    ("n_values=[8, 32, 8]", "n_values lists 8 twice; give each entry once, got [8, 32, 8]"),
    ('presets=["fno-64k", "fno-64k"]', "presets lists 'fno-64k' twice"),
    ('strategies=["full", "spider", "full"]', "strategies lists 'full' twice"),
    ('methods=["scratch", "scratch"]', "methods lists 'scratch' twice"),
    ('pretrain.tasks=["poisson", "poisson"]', "pretrain.tasks lists 'poisson' twice"),
    ("n_values=[0, 8]", "n_values must be integers >= 1, got 0 in (0, 8)"),
    ("n_values=[]", "n_values must list at least one value, got none"),
    ("methods=[]", "methods must list at least one value, got none"),
    ("steps=0", "steps must be an integer >= 1, got 0"),
    ("batch_size=-1", "batch_size must be an integer >= 1, got -1"),
    ("validations=0", "validations must be an integer >= 1, got 0"),
    ("n_val=0", "n_val must be an integer >= 1, got 0"),
    ("n_test=0", "n_test must be an integer >= 1, got 0"),
    ("pretrain.n_val=0", "pretrain.n_val must be an integer >= 1, got 0"),
    ("pretrain.epochs=0", "pretrain.epochs must be an integer >= 1, got 0"),
    ("pretrain.batch_size=0", "pretrain.batch_size must be an integer >= 1, got 0"),
    ("pretrain.n=1", "pretrain.n = 1 leaves task 'helmholtz' without samples"),
    ("pretrain.proportions=[1, nan]", "pretrain.proportions[1] must be a finite number > 0"),
    ("seed=-1", "seed must be an integer >= 0, got -1"),
    ("seeds=[0, -2]", "seeds[1] must be an integer >= 0, got -2"),
    ("seeds=[1, 1]", "seeds lists 1 twice; give each entry once"),
    (
        "downstream_resolution=17",
        "downstream_resolution must be an even integer >= 16, got 17 (0: the pre-training "
        "resolution)",
    ),
    ("name='..'", "name may use only letters, digits, '-', '_' and '.' (starting with a letter"),
]


@pytest.mark.parametrize("override, message", REFUSED)
def test_values_no_sweep_can_run_are_refused_when_the_study_is_made(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_study("demo", [override])


def test_a_downstream_grid_is_refused_where_a_task_or_a_preset_cannot_have_it():
    with pytest.raises(
        ValueError, match=re.escape("task 'poisson' is both pre-trained on (32x32)")
    ):
        load_study("demo", ["downstream_resolution=64", 'downstream=["poisson"]'])
    with pytest.raises(
        ValueError, match="fno-4m keeps 16 modes; it needs downstream_resolution >= 32, got 16"
    ):
        load_study("demo", ['presets=["fno-4m"]', "downstream_resolution=16"])
    study = load_study("demo", ["downstream_resolution=64"])
    assert study.task_resolution("poisson") == 32 and study.task_resolution("advdiff") == 64


def test_a_model_pre_trained_on_one_grid_is_fine_tuned_on_another(tmp_path):
    study = load_study(
        "demo", [*TINY, "downstream_resolution=32", "n_values=[8]", "lr_grid=[1e-3]"]
    )
    report = experiments.sweep(study, tmp_path / "s", progress=False)
    for task, grid in (("poisson", (16, 16)), ("poisson-ood", (32, 32))):
        with data.open(tmp_path / "s" / "data" / f"{task}-test.h5") as ds:
            assert ds.grid == grid
    rows = experiments.read_results(tmp_path / "s" / "results.csv")
    assert sorted(r.method.kind.value for r in rows) == ["finetune", "scratch", "zero-shot"]
    assert all(r.status is Status.OK and 0 < r.test_rel_l2 < 10 for r in rows)
    tuned = next(r for r in rows if r.method == Method.finetune("full"))
    assert set(tuned.retained) == {"poisson", "helmholtz"}  # scored back on the 16x16 grid
    assert "pre-training on 16x16 grids, downstream tasks on 32x32" in report.read_text()


def test_a_study_made_directly_is_checked_the_same_way():
    study = load_study("demo")
    for change, message in [
        (dict(resolution=33), "resolution must be an even integer >= 16, got 33"),
        (dict(steps=2.5), "steps must be an integer >= 1, got 2.5"),
        (dict(n_values=(8, True)), "n_values must be integers >= 1, got True in (8, True)"),
        (dict(lr_grid=(1e-3, math.nan)), "lr_grid[1] must be a finite number > 0, got nan"),
        (dict(pretrain=replace(study.pretrain, lr=math.inf)), "pretrain.lr must be a finite"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            replace(study, **change)


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    rc, _, err = scifm(capsys, "sweep", "demo", "--set", "colour=1", "--out", str(tmp_path / "s"))
    assert rc == 2
    assert err.count("\n") == 1 and "valid keys" in err
    assert not (tmp_path / "s").exists()
    rc, _, err = scifm(capsys, "sweep", "nothing-like-this")
    assert rc == 2 and "demo" in err
    for override, message in REFUSED[:2]:  # --dry-run refuses what the sweep would
        rc, out, err = scifm(capsys, "sweep", "demo", "--set", override, "--dry-run")
        assert (rc, out, err) == (2, "", f"scifm: error: {message}\n")
        rc, out, err = scifm(
            capsys, "sweep", "demo", "--set", override, "--out", str(tmp_path / "s")
        )
        assert (rc, out, err) == (2, "", f"scifm: error: {message}\n")
        assert not (tmp_path / "s").exists()


def test_mixture_counts_follow_the_proportions():
    study = load_study("demo", ["pretrain.n=10", "pretrain.proportions=[3, 1]"])
    assert study.pretrain.counts() == {"poisson": 8, "helmholtz": 2}


# -- the data-saving headline ---------------------------------------------------------------------
def test_data_saving_interpolates_log_log():
    scratch = [(8, 0.8, 0, 1), (64, 0.4, 0, 1), (512, 0.1, 0, 1)]
    # fine-tuned error halves per 8x: 0.4 at 8, 0.2 at 64 -> reaches 0.1 exactly at n = 512/8...
    finetune = [(8, 0.4, 0, 1), (64, 0.2, 0, 1), (512, 0.05, 0, 1)]
    s = experiments.data_saving(scratch, finetune)
    # between (64, 0.2) and (512, 0.05): log-linear in log n, error 0.1 at n = 64 * 8**0.5
    assert s.n_max == 512 and s.target == 0.1
    assert s.n_needed == pytest.approx(64 * 8**0.5)
    assert s.saving == pytest.approx(512 / (64 * 8**0.5)) and not s.bound
    assert s.text() == ("181", "2.83x")
    s = experiments.data_saving(scratch, [(8, 0.09, 0, 1), (64, 0.05, 0, 1), (512, 0.01, 0, 1)])
    assert s.bound and s.saving == 64  # better than the target already at the smallest n
    assert s.text() == ("<= 8", ">= 64x")
    s = experiments.data_saving(scratch, [(8, 0.9, 0, 1), (64, 0.5, 0, 1), (512, 0.2, 0, 1)])
    assert s.saving is None and s.finetune_at_n_max == 0.2
    assert s.text() == ("not reached", "< 1x")
    assert experiments.data_saving([], finetune) is None


def test_harmonic_score():
    assert experiments.harmonic_score(0.2, 0.2) == pytest.approx(0.8)
    assert experiments.harmonic_score(0.5, 0.0) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert experiments.harmonic_score(1.3, 0.1) == 0.0  # worse than predicting zero downstream


# -- mixtures of data ----------------------------------------------------------------------------------
def test_concatenated_fields_in_memory_and_lazy_agree(tmp_path):
    a = data.generate(pdes.Poisson(), 6, 16, 0, tmp_path / "a.h5")
    b = data.generate(pdes.Helmholtz(), 5, 16, 1, tmp_path / "b.h5")
    memory = data.FieldSet.concatenate([data.FieldSet.load(a), data.FieldSet.load(b, limit=4)])
    lazy = data.FieldSet.concatenate(
        [data.FieldSet.load(a, memory_budget=0), data.FieldSet.load(b, memory_budget=0, limit=4)]
    )
    assert len(memory) == len(lazy) == 10
    index = np.array([9, 0, 7, 6, 5, 5])
    for x, y in zip(memory.take(index), lazy.take(index), strict=True):
        np.testing.assert_array_equal(x, y)
    with data.open(b) as ds:
        np.testing.assert_array_equal(memory.take(np.array([7]))[2], ds.outputs[1:2])
    lazy.close()  # closes the files it reads from
    with pytest.raises(OSError):  # h5py: reading a closed dataset
        lazy.take(np.array([0]))


def test_methods_have_one_label_and_one_directory_name():
    full, spider = Method.finetune("full"), Method.finetune("spider")
    assert [m.label for m in (Method.zero_shot(), Method.scratch(), full)] == [
        "zero-shot",
        "scratch",
        "fine-tune (full)",
    ]
    assert [m.slug for m in (Method.scratch(), spider)] == ["scratch", "finetune-spider"]
    assert sorted([spider, full, Method.scratch(), Method.zero_shot()], key=lambda m: m.order) == [
        Method.zero_shot(),
        Method.scratch(),
        full,
        spider,
    ]
    with pytest.raises(ValueError, match="strategy is given exactly for fine-tuning"):
        Method(experiments.MethodKind.SCRATCH, "full")
    with pytest.raises(ValueError, match="'tuning' is not a valid MethodKind"):
        Method("tuning")


def test_point_directories_and_json_are_those_of_existing_sweeps():
    study = load_study("demo", [*TINY, 'strategies=["full", "spider"]'])
    first, second = experiments.plan(study)
    assert [p.directory for p in first[:3]] == [
        "runs/pretrain/fno-64k",
        "runs/fno-64k/poisson-ood/scratch/n00004-lr0.001",
        "runs/fno-64k/poisson-ood/scratch/n00004-lr0.003",
    ]
    assert second[1].directory == "runs/fno-64k/poisson-ood/finetune-spider/n00004-lr0.001"
    assert second[1].describe() == "fno-64k poisson-ood fine-tune (spider) n=4 lr=0.001"
    assert first[0].describe() == "pre-train fno-64k"
    plain = json.loads(json.dumps(second[1].to_dict()))
    assert plain == {
        "kind": "finetune",
        "preset": "fno-64k",
        "task": "poisson-ood",
        "n": 4,
        "lr": 0.001,
        "strategy": "spider",
        "seed": None,
    }
    assert Point(**plain) == second[1] and Point(**plain).kind is experiments.PointKind.FINETUNE
    del plain["seed"]  # a point.json from before seeds is the study's own seed
    assert Point(**plain) == second[1]
    # another seed repeats every point, pre-training included, in directories of its own
    seeded = load_study("demo", [*TINY, "seeds=[0, 5]"])
    first, second = experiments.plan(seeded)
    directories = [p.directory for p in first]
    assert "runs/pretrain/fno-64k" in directories and "runs/pretrain/fno-64k-s5" in directories
    assert len(first) == 2 * len(experiments.plan(study)[0])
    assert "runs/fno-64k/poisson-ood/scratch/n00004-lr0.001-s5" in directories
    tuned = [p for p in second if p.seed == 5]
    assert tuned[0].describe() == "fno-64k poisson-ood fine-tune (full) n=4 lr=0.001 seed=5"


def _result(val, test):
    """A point.json: its validation error and test errors by task."""
    return {
        "status": "ok",
        "val_rel_l2": val,
        "steps": 6,
        "train_seconds": 1.23456,
        "parameters": 1055233,
        "test": {t: {"rel_l2_mean": e, "rel_l2_std": 0.01, "n": 8} for t, e in test.items()},
        "seconds": 2.5,
    }


def test_rows_select_by_validation_and_results_csv_reads_back(tmp_path):
    study = load_study("demo", TINY)
    assert study.pretrain.tasks == ("poisson", "helmholtz")
    s, f = experiments.PointKind.SCRATCH, experiments.PointKind.FINETUNE
    diverged = {"status": "diverged", "message": "...", "val_rel_l2": math.inf, "test": {}}
    points = [
        (
            Point("pretrain", "fno-64k"),
            _result(0.5, {"poisson": 0.25, "helmholtz": 0.75, "poisson-ood": 1.5}),
        ),
        (Point(s, "fno-64k", "poisson-ood", 4, 1e-3), _result(0.3, {"poisson-ood": 0.35})),
        (Point(s, "fno-64k", "poisson-ood", 4, 3e-3), _result(0.2, {"poisson-ood": 0.25})),
        (
            Point(f, "fno-64k", "poisson-ood", 4, 1e-3),
            _result(0.1, {"poisson-ood": 0.125, "poisson": 0.25, "helmholtz": 0.5}),
        ),
        (Point(f, "fno-64k", "poisson-ood", 4, 3e-3), {**diverged, "seconds": 2.5}),
    ]
    rows = experiments.rows_from_points(study, points[::-1])
    assert [(r.method.label, r.lr, r.selected) for r in rows] == [
        ("zero-shot", study.pretrain.lr, True),
        ("scratch", 1e-3, False),
        ("scratch", 3e-3, True),  # the lower validation error
        ("fine-tune (full)", 1e-3, True),
        ("fine-tune (full)", 3e-3, False),  # diverged: never selected
    ]
    zero, tuned, diverged = rows[0], rows[3], rows[4]
    assert zero.n == 0 and zero.val_rel_l2 is None and zero.test_rel_l2 == 1.5
    assert zero.retained_rel_l2 == 0.5 and tuned.test_rel_l2 == 0.125
    assert tuned.retained == {"poisson": 0.25, "helmholtz": 0.5}
    assert tuned.retained_rel_l2 == 0.375 and rows[1].retained_rel_l2 is None
    assert tuned.train_seconds == 1.235 and tuned.run.endswith("finetune-full/n00004-lr0.001")
    assert diverged.status is Status.DIVERGED and diverged.test_rel_l2 is None
    assert diverged.val_rel_l2 == math.inf and diverged.parameters is None
    path = experiments.write_results(rows, tmp_path / "results.csv")
    text = path.read_text()
    header, *lines = text.splitlines()
    assert header == (
        "preset,parameters,task,system,shift,method,strategy,n,lr,seed,selected,status,val_rel_l2,"
        "val_residual,test_rel_l2,test_rel_l2_std,test_samples,retained_rel_l2,steps,"
        "train_seconds,seconds,run,retained_rel_l2[helmholtz],retained_rel_l2[poisson]"
    )
    assert lines[0] == (
        "fno-64k,1055233,poisson-ood,poisson,strong shift,zero-shot,,0,0.003,0,True,ok,,,1.5,"
        "0.01,8,0.5,6,1.235,2.5,runs/pretrain/fno-64k,0.75,0.25"
    )
    assert lines[4] == (
        "fno-64k,,poisson-ood,poisson,strong shift,finetune,full,4,0.003,0,False,diverged,inf,,,"
        ",,,,,2.5,runs/fno-64k/poisson-ood/finetune-full/n00004-lr0.003,,"
    )
    back = experiments.read_results(path)
    assert back == rows  # every number here has at most 6 significant digits
    experiments.write_results(back, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == text
    # a table written before physics-informed rows and seeds (no val_residual, no seed) reads
    cut = [line.split(",") for line in text.splitlines()]
    drop = {cut[0].index("val_residual"), cut[0].index("seed")}
    (tmp_path / "old.csv").write_text(
        "\n".join(",".join(x for i, x in enumerate(c) if i not in drop) for c in cut) + "\n"
    )
    old = experiments.read_results(tmp_path / "old.csv")
    assert old == [replace(r, seed=None) for r in rows]
    (tmp_path / "bad.csv").write_text("preset,task\nfno-64k,poisson\n")
    with pytest.raises(ValueError, match="not a scifm results table"):
        experiments.read_results(tmp_path / "bad.csv")


def test_physics_rows_are_selected_by_the_residual_not_the_labels():
    study = load_study("demo", TINY)
    p = experiments.PointKind.PHYSICS
    points = [
        (  # the lower validation error against labels, but the higher residual
            Point(p, "fno-64k", "poisson-ood", 0, 1e-3),
            {**_result(0.1, {"poisson-ood": 0.2, "poisson": 0.3}), "val_residual": 0.5},
        ),
        (
            Point(p, "fno-64k", "poisson-ood", 0, 3e-3),
            {**_result(0.2, {"poisson-ood": 0.3, "poisson": 0.4}), "val_residual": 0.4},
        ),
    ]
    rows = experiments.rows_from_points(study, points)
    assert [(r.method.label, r.n, r.lr, r.selected) for r in rows] == [
        ("physics-informed", 0, 1e-3, False),
        ("physics-informed", 0, 3e-3, True),
    ]
    assert rows[1].val_residual == 0.4 and rows[1].retained == {"poisson": 0.4}
    assert rows[1].run == "runs/fno-64k/poisson-ood/physics/n00000-lr0.003"


def test_plan_runs_physics_at_every_n_and_without_labels():
    study = replace(_tiny(), methods=("physics",))
    first, second = experiments.plan(study)
    assert [q.kind for q in first] == [experiments.PointKind.PRETRAIN]
    assert sorted({q.n for q in second}) == [0, *study.n_values]
    assert {q.method for q in second} == {Method.physics()}


# -- executors ---------------------------------------------------------------------------------------
def test_executors_are_named_in_one_registry(tmp_path):
    assert list(experiments.EXECUTORS) == ["local", "slurm", "submitit-local"]
    assert experiments.make_executor("local", folder=tmp_path) is None  # inline
    pool = experiments.make_executor("local", jobs=2, folder=tmp_path)
    try:
        assert isinstance(pool, ProcessPoolExecutor)
    finally:
        pool.shutdown()
    with pytest.raises(ValueError, match="unknown executor 'dask'; valid executors: local, slurm"):
        experiments.make_executor("dask", folder=tmp_path)
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        experiments.make_executor("local", jobs=0, folder=tmp_path)
    with pytest.raises(ValueError, match="unknown executor"):  # before any data is generated
        experiments.sweep(_tiny(), tmp_path / "s", executor="dask", progress=False)
    assert not (tmp_path / "s").exists()


def test_slurm_without_srun_is_refused_before_anything_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no srun (nor anything else)
    with pytest.raises(ValueError, match="executor 'slurm': Could not detect \"srun\""):
        experiments.sweep(_tiny(), tmp_path / "s", executor="slurm", progress=False)
    assert not (tmp_path / "s").exists()


class _Failing:
    """An executor whose jobs fail as submitit's do: the job's traceback in the message."""

    def submit(self, fn, *args):
        future = Future()
        future.set_exception(
            RuntimeError("Traceback (most recent call last):\n  ...\nOSError: disk full")
        )
        return future


def test_execute_names_each_failed_point_by_the_last_line_of_its_error(tmp_path):
    points = [Point("scratch", "fno-64k", "poisson-ood", n, 1e-3) for n in (4, 8)]
    with pytest.raises(RuntimeError) as info:
        experiments.execute(tmp_path, points, executor=_Failing())
    assert str(info.value) == (
        "2 point(s) failed: fno-64k poisson-ood scratch n=4 lr=0.001: RuntimeError: OSError: "
        "disk full; fno-64k poisson-ood scratch n=8 lr=0.001: RuntimeError: OSError: disk full"
    )


# -- sweeps end to end ---------------------------------------------------------------------------------
def _tiny(extra=()):
    return load_study("demo", [*TINY, *extra])


def _saved(sweep, study):
    """``sweep`` as prepare leaves it before the data: the directory and its study.json."""
    sweep.mkdir()
    (sweep / "study.json").write_text(json.dumps(study.to_dict(), indent=2))
    return sweep


def test_a_refused_sweep_directory_is_left_as_it_was(tmp_path):
    sweep = _saved(tmp_path / "s", _tiny())
    before = (sweep / "study.json").read_text()
    with pytest.raises(RunConflict, match=r"holds another study \(steps: 6 -> 7\)"):
        experiments.prepare(_tiny(["steps=7"]), sweep)
    assert (sweep / "study.json").read_text() == before and os.listdir(sweep) == ["study.json"]
    # one saved by an older scifm that let a bad value through: said so, with what to do
    old = {**_tiny().to_dict(), "resolution": 8}
    (sweep / "study.json").write_text(json.dumps(old))
    with pytest.raises(RunConflict, match="resolution: 8 -> 16.*itself one no sweep can run"):
        experiments.prepare(_tiny(), sweep)
    (tmp_path / "file").write_text("")
    with pytest.raises(RunConflict, match="is a file, not a sweep directory"):
        experiments.prepare(_tiny(), tmp_path / "file")


def test_corrupt_study_and_point_files_are_named_with_what_to_do(tmp_path, capsys):
    study = _tiny()
    sweep = _saved(tmp_path / "s", study)
    first, _ = experiments.plan(study)
    point = sweep / first[1].directory / "point.json"
    point.parent.mkdir(parents=True)
    point.write_text('{"point": {"kind": "scr')  # not as atomic_write_text leaves it
    with pytest.raises(RunError, match=f"{point} is not valid JSON.*delete it and rerun the"):
        experiments.execute(sweep, first)
    point.write_text("[]")
    with pytest.raises(RunError, match=f"{point} does not hold a JSON object"):
        experiments.execute(sweep, first)
    point.write_text('{"status": "fine"}')
    with pytest.raises(RunError, match=f"{point} holds no point status.*redo that point"):
        experiments.execute(sweep, first)
    (sweep / "study.json").write_text('{"name": "demo", ')
    message = f"{sweep}/study.json is not valid JSON (a corrupt file); restore it or delete {sweep}"
    with pytest.raises(RunError, match=re.escape(message)):
        experiments.prepare(study, sweep)
    with pytest.raises(RunError, match=re.escape(message)):
        experiments.run_point(sweep, first[1].to_dict())
    rc, _, err = scifm(capsys, "sweep", "demo", *_sets(TINY), "--out", str(sweep))
    assert (rc, err) == (2, f"scifm: error: {message} to start over\n")
    (sweep / "study.json").write_text(json.dumps({**study.to_dict(), "steps": 0}))
    with pytest.raises(RunError, match="study.json does not hold a valid study \\(steps must be"):
        experiments.run_point(sweep, first[1].to_dict())
    with pytest.raises(ValueError, match="study.json is not valid JSON"):
        (sweep / "study.json").write_text("{")
        load_study(sweep / "study.json")


# -- fault injection: a sweep stopped at each kind of save point ends as an uninterrupted one -----
SMALL = [  # three points: pre-training, scratch and fine-tuning, two saved states each
    *TINY,
    "n_values=[4]",
    "lr_grid=[1e-3]",
    "steps=4",
    "batch_size=4",
    "n_val=4",
    "n_test=4",
    "pretrain.n=8",
    "pretrain.n_val=4",
    "pretrain.batch_size=4",
]
TIMING = {"seconds", "train_seconds"}


class _Stop(Exception):
    pass


def _stop_at(m, where: str, k: int) -> list:
    """With the monkeypatch ``m``, raise right after the ``k``-th (from 1; 0: never) of: a run's
    saved state (``where="save"``), a run's result.json ("result": its point.json is still to
    come), a ``point.json`` written ("point"), the report about to be written ("report").
    Returns the list of calls so far."""
    calls = []

    def stop():
        calls.append(1)
        if len(calls) == k:
            raise _Stop

    if where in ("save", "result"):
        name = {"save": "save_state", "result": "write_result"}[where]
        original = getattr(RunDirectory, name)

        def patched(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            stop()
            return out

        m.setattr(RunDirectory, name, patched)
    elif where == "point":
        write_text = _sweep.atomic_write_text

        def patched(path, text):
            write_text(path, text)
            if path.name == "point.json":
                stop()

        m.setattr(_sweep, "atomic_write_text", patched)
    else:
        write_report = _sweep.write_report

        def patched(*args, **kwargs):
            stop()
            return write_report(*args, **kwargs)

        m.setattr(_sweep, "write_report", patched)
    return calls


def _outcome(sweep) -> tuple[list, dict]:
    """results.csv and every point.json of ``sweep``, timings dropped."""
    with open(sweep / "results.csv", newline="") as fh:
        rows = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]
    points = {}
    for path in sorted(sweep.glob("runs/**/point.json")):
        result = json.loads(path.read_text())
        points[str(path.relative_to(sweep))] = {k: v for k, v in result.items() if k not in TIMING}
    return rows, points


def test_sweep_stopped_at_each_save_point_resumes_to_the_same_results(tmp_path, monkeypatch):
    study = load_study("demo", SMALL)
    # the figures take most of a tiny sweep's time, and are not compared
    monkeypatch.setattr(_sweep, "plot_curves", lambda run: None)
    for plot in ("plot_error_vs_n", "plot_gain_vs_size", "plot_forgetting"):
        monkeypatch.setattr(experiments._markdown, plot, lambda study, rows: None)
    monkeypatch.setattr(data, "plot_samples", lambda *args, **kwargs: None)
    with monkeypatch.context() as m:
        counts = {w: _stop_at(m, w, 0) for w in ("save", "result", "point", "report")}
        experiments.sweep(study, tmp_path / "whole", progress=False)
    assert {where: len(c) for where, c in counts.items()} == {
        "save": 6,
        "result": 3,
        "point": 3,
        "report": 1,
    }
    whole = _outcome(tmp_path / "whole")
    assert [r["method"] for r in whole[0]] == ["zero-shot", "scratch", "finetune"]
    assert all(r["status"] == "ok" for r in whole[0]) and len(whole[1]) == 3
    # after pre-training's first and last saved state, scratch's first, fine-tuning's last;
    # after pre-training's and fine-tuning's result.json; after the point.json of pre-training
    # and of scratch; before the report
    for where, k in [
        ("save", 1),
        ("save", 2),
        ("save", 3),
        ("save", 6),
        ("result", 1),
        ("result", 3),
        ("point", 1),
        ("point", 2),
        ("report", 1),
    ]:
        sweep = tmp_path / f"{where}-{k}"
        with monkeypatch.context() as m:
            _stop_at(m, where, k)
            with pytest.raises(_Stop):
                experiments.sweep(study, sweep, progress=False)
        assert not (sweep / "results.csv").exists()
        experiments.sweep(study, sweep, progress=False)
        assert _outcome(sweep) == whole, f"stopped at {where} {k}"


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path):
    study = _tiny(['strategies=["full", "spider"]'])
    report = experiments.sweep(study, tmp_path / "s", progress=False)
    rows = experiments.read_results(tmp_path / "s" / "results.csv")
    # zero-shot, then (scratch, fine-tune full, fine-tune spider) x n in {4, 8} x lr in {1e-3, 3e-3}
    assert len(rows) == 1 + 3 * 2 * 2
    assert [r.method for r in rows].count(Method.zero_shot()) == 1
    for method in (Method.scratch(), Method.finetune("full"), Method.finetune("spider")):
        for n in (4, 8):
            group = [r for r in rows if (r.method, r.n) == (method, n)]
            assert len(group) == 2 and [r.selected for r in group].count(True) == 1
            assert min(group, key=lambda r: r.val_rel_l2).selected
    for r in rows:
        assert r.status is Status.OK and 0 < r.test_rel_l2 < 10
        assert r.test_samples == 8 and r.parameters == 67329
        if r.method != Method.scratch():  # forgetting: the pre-training tasks were evaluated too
            assert r.retained_rel_l2 > 0 and set(r.retained) == {"poisson", "helmholtz"}
    # every downstream run took at least the step budget, whatever n
    assert all(r.steps >= 6 for r in rows if r.method != Method.zero_shot())
    text = report.read_text()
    assert "## Headline" in text and "![error vs n](error_vs_n.png)" in text
    assert "![forgetting](forgetting.png)" in text and "| spider |" in text
    for png in ("error_vs_n.png", "forgetting.png", "data/poisson-ood.png"):
        assert (tmp_path / "s" / png).stat().st_size > 10_000, png
    # the forgetting table: one line per selected fine-tuned row, changes against zero-shot
    f = experiments.forgetting(rows)
    assert len(f) == 4 and {x.strategy for x in f} == {"full", "spider"}
    zero = next(r for r in rows if r.method == Method.zero_shot())
    for x in f:
        assert x.retained_change == pytest.approx(x.retained - zero.retained_rel_l2)
    assert json.loads((tmp_path / "s" / "study.json").read_text()) == study.to_dict()
    # the same sweep again does nothing new and gives the same table; another study is refused
    before = (tmp_path / "s" / "results.csv").read_text()
    experiments.sweep(study, tmp_path / "s", progress=False)
    after = (tmp_path / "s" / "results.csv").read_text()
    strip = lambda t: [line.split(",")[:16] for line in t.splitlines()]  # noqa: E731
    assert strip(before) == strip(after)
    with pytest.raises(ValueError, match=r"holds another study \(steps: 6 -> 7\)"):
        experiments.sweep(_tiny(["steps=7"]), tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="n_values up to 16 need a new sweep directory"):
        experiments.sweep(_tiny(["n_values=[4, 16]"]), tmp_path / "s", progress=False)
    # extending the grid with a strategy keeps every finished point and adds the new ones
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").glob("runs/**/point.json")}
    wider = _tiny(['strategies=["full", "spider", "magnitude"]'])
    experiments.sweep(wider, tmp_path / "s", progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    rows = experiments.read_results(tmp_path / "s" / "results.csv")
    assert len(rows) == 1 + 4 * 2 * 2 and "| magnitude |" in report.read_text()
    assert json.loads((tmp_path / "s" / "study.json").read_text()) == wider.to_dict()
    # and with the physics method: every n and n = 0, chosen by the validation residual
    physics = _tiny(
        [
            'strategies=["full", "spider", "magnitude"]',
            'methods=["zero-shot", "scratch", "finetune", "physics"]',
        ]
    )
    experiments.sweep(physics, tmp_path / "s", progress=False)
    rows = experiments.read_results(tmp_path / "s" / "results.csv")
    informed = [r for r in rows if r.method == Method.physics()]
    assert sorted((r.n, r.lr) for r in informed) == [
        (n, lr) for n in (0, 4, 8) for lr in (1e-3, 3e-3)
    ]
    for n in (0, 4, 8):
        group = [r for r in informed if r.n == n]
        assert min(group, key=lambda r: r.val_residual).selected
        assert all(r.status is Status.OK and 0 < r.test_rel_l2 < 10 for r in group)
        assert all(r.retained_rel_l2 > 0 and r.steps >= 6 for r in group)
    text = report.read_text()
    assert "## Physics-informed fine-tuning: few labels or none" in text
    assert "| fno-64k | poisson-ood | 0 |" in text


@pytest.mark.slow
def test_killed_sweep_resumes_without_redoing_finished_points(tmp_path):
    # real processes throughout: one is killed, and its rerun must run as it did (float32,
    # not this process's float64)
    out = tmp_path / "s"
    args = ["sweep", "demo", *_sets(TINY), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scifm.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while len(list(out.glob("runs/**/point.json"))) < 4 and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: (p.stat().st_mtime_ns, p.read_text()) for p in out.glob("runs/**/point.json")}
    assert 4 <= len(finished) < 9 and not (out / "results.csv").exists()
    r = _process(*args)
    assert r.returncode == 0, r.stderr
    for p, (mtime, text) in finished.items():  # finished points were not redone
        assert p.stat().st_mtime_ns == mtime and p.read_text() == text
    assert len(list(out.glob("runs/**/point.json"))) == 9
    assert len(experiments.read_results(out / "results.csv")) == 9
    assert "the n fine-tuning needs" in r.stdout and "report.md" in r.stdout


@pytest.mark.slow
def test_other_executors_give_the_inline_numbers(tmp_path, capsys):
    # two scratch points in two local processes, one through submitit's local executor; the
    # inline sweep runs here, in float32 as from a shell (inline stages, fine-tuning after
    # pre-training, are run by the end-to-end and fault-injection tests)
    two = [*TINY, "n_values=[4]", 'methods=["scratch"]']
    with jax.enable_x64(False):
        assert main(["sweep", "demo", *_sets(two), "--out", str(tmp_path / "inline")]) == 0
    inline = {r.run: r for r in experiments.read_results(tmp_path / "inline" / "results.csv")}
    runs = {
        "local": (["--jobs", "2"], two),
        "submitit": (["--executor", "submitit-local"], [*two, "lr_grid=[1e-3]"]),
    }
    for name, (flags, sets) in runs.items():
        r = _process("sweep", "demo", *_sets(sets), "--out", str(tmp_path / name), *flags)
        assert r.returncode == 0, r.stderr
        rows = experiments.read_results(tmp_path / name / "results.csv")
        assert len(rows) == (2 if name == "local" else 1)
        for y in rows:
            assert math.isclose(inline[y.run].test_rel_l2, y.test_rel_l2, rel_tol=1e-5)
    assert any((tmp_path / "submitit" / "submitit").iterdir())  # the job went through submitit


def _row(preset, method, n, err, params=1000):
    return Row(
        preset=preset,
        task="poisson-ood",
        system="poisson",
        shift="strong shift",
        method=method,
        n=n,
        lr=1e-3,
        status=Status.OK,
        run=f"runs/{preset}/{method.slug}/{n}",
        selected=True,
        parameters=params,
        val_rel_l2=err,
        test_rel_l2=err,
        test_rel_l2_std=0.1 * err,
        test_samples=100,
        steps=10,
        train_seconds=1.0,
        seconds=1.0,
    )


def test_report_of_two_presets_checks_the_size_claim(tmp_path):
    # synthetic results: the larger model gains more from fine-tuning (4x vs 2x at n = 8)
    study = load_study(
        "demo",
        [
            'presets=["fno-64k", "fno-1m"]',
            'downstream=["poisson-ood"]',
            "n_values=[8, 64]",
            'strategies=["full"]',
        ],
    )
    rows = []
    for preset, params, gain in (("fno-64k", 67329, 2.0), ("fno-1m", 1055233, 4.0)):
        rows += [
            _row(preset, Method.scratch(), 8, 0.4, params=params),
            _row(preset, Method.scratch(), 64, 0.2, params=params),
        ]
        rows += [
            _row(preset, Method.finetune("full"), 8, 0.4 / gain, params),
            _row(preset, Method.finetune("full"), 64, 0.1, params),
        ]
    (tmp_path / "data").mkdir()
    for task in ("poisson", "helmholtz", "poisson-ood"):
        data.generate(study.tasks[task].build(), 2, 16, 0, tmp_path / "data" / f"{task}-test.h5")
    report = experiments.write_report(study, rows, tmp_path).read_text()
    assert "poisson-ood: fno-64k 2x -> fno-1m 4x (grows)" in report
    assert (tmp_path / "gain_vs_size.png").stat().st_size > 10_000
    assert "![gain vs size](gain_vs_size.png)" in report
    # fno-1m: fine-tuned error 0.1 at 8 already beats scratch's 0.2 at 64: a lower bound of 8x
    line = next(h for h in experiments.headline(study, rows) if h.preset == "fno-1m")
    assert line.method == Method.finetune("full") and line.zero_shot is None
    assert line.saving.bound and line.saving.saving == 8
    assert (
        "| fno-1m | poisson-ood | fine-tune (full) | 0.2 (n=64) | 0.1 | — | <= 8 | >= 8x |"
        in report
    )
