"""Studies: configs, the sweep end to end (inline, processes, submitit), resumption, report maths."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from scifm import data, experiments, pdes
from scifm.experiments import Study, load_study

TINY = [
    "resolution=16",
    'presets=["fno-64k"]',
    'downstream=["poisson-ood"]',
    "n_values=[4, 8]",
    "lr_grid=[1e-3, 3e-3]",
    "steps=6",
    "validations=2",
    "n_val=8",
    "n_test=8",
    "pretrain.n=32",
    "pretrain.n_val=8",
    "pretrain.epochs=2",
    'strategies=["full"]',
]


def scifm(*args):
    return subprocess.run(
        [sys.executable, "-m", "scifm.cli", *args], capture_output=True, text=True
    )


# -- configs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", experiments.builtin_studies())
def test_shipped_studies_round_trip(name, tmp_path):
    study = load_study(name)
    assert Study.from_dict(json.loads(json.dumps(study.to_dict()))) == study
    study.save(tmp_path / "study.json")
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
        ("pretrain.proportions=[1, 2, 3]", "pretrain.proportions must be 2 positive numbers"),
        ('presets=["fno-1m"]', "preset fno-1m keeps 8 modes; it needs resolution >= 16, got 8"),
    ],
)
def test_bad_configs_name_the_valid_choices(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_study("demo", [override, "resolution=8" if "fno-1m" in override else "seed=0"])


def test_cli_reports_a_bad_config_in_one_line(tmp_path):
    r = scifm("sweep", "demo", "--set", "colour=1", "--out", str(tmp_path / "s"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "valid keys" in r.stderr
    assert not (tmp_path / "s").exists()
    r = scifm("sweep", "nothing-like-this")
    assert r.returncode == 2 and "demo" in r.stderr


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
    assert s["n_needed"] == pytest.approx(64 * 8**0.5)
    assert s["saving"] == pytest.approx(512 / (64 * 8**0.5)) and not s["bound"]
    s = experiments.data_saving(scratch, [(8, 0.09, 0, 1), (64, 0.05, 0, 1), (512, 0.01, 0, 1)])
    assert s["bound"] and s["saving"] == 64  # better than the target already at the smallest n
    s = experiments.data_saving(scratch, [(8, 0.9, 0, 1), (64, 0.5, 0, 1), (512, 0.2, 0, 1)])
    assert s["saving"] is None and s["finetune_at_n_max"] == 0.2


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


def test_normaliser_of_a_mixture_uses_the_typical_nonzero_magnitude(tmp_path):
    a = data.generate(pdes.Poisson(), 16, 16, 0, tmp_path / "a.h5")
    b = data.generate(pdes.Helmholtz(), 48, 16, 1, tmp_path / "b.h5")
    fa, fb = data.FieldSet.load(a), data.FieldSet.load(b)
    mixed = data.Normalizer.fit(data.FieldSet.concatenate([fa, fb]))
    k12 = list(pdes.COEFFICIENT_NAMES).index("k12")
    omega = list(pdes.COEFFICIENT_NAMES).index("omega")
    # k12 is zero for every Helmholtz sample: its scale is still the Poisson median
    assert mixed.coefficient_scale[k12] == pytest.approx(np.median(np.abs(fa.coefficients[:, k12])))
    assert mixed.coefficient_scale[omega] == pytest.approx(
        np.median(np.abs(fb.coefficients[:, omega]))
    )
    vx = list(pdes.COEFFICIENT_NAMES).index("vx")
    assert np.isnan(mixed.coefficient_scale[vx])  # never seen: marked, used as 1
    f, c, _ = fa.take(np.arange(2))
    plain = data.Normalizer(
        mixed.source_scale, np.where(np.isnan(mixed.coefficient_scale), 1, mixed.coefficient_scale)
    )
    np.testing.assert_array_equal(jax.vmap(mixed)(f, c), jax.vmap(plain)(f, c))
    # fine-tuning on advection-diffusion fills in the velocity scale from its data, nothing else
    d = data.FieldSet.load(data.generate(pdes.AdvectionDiffusion(), 8, 16, 2, tmp_path / "d.h5"))
    done = mixed.complete(d)
    assert done.coefficient_scale[vx] == pytest.approx(np.median(np.abs(d.coefficients[:, vx])))
    keep = np.arange(6) != vx
    keep[vx + 1] = False
    np.testing.assert_array_equal(done.coefficient_scale[keep], mixed.coefficient_scale[keep])


# -- sweeps end to end ---------------------------------------------------------------------------------
def _typed(rows):
    return [{**r, "selected": r["selected"] == "True"} for r in rows]


def _tiny(extra=()):
    return load_study("demo", [*TINY, *extra])


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path):
    study = _tiny(['strategies=["full", "spider"]'])
    report = experiments.sweep(study, tmp_path / "s", progress=False)
    rows = experiments.read_csv(tmp_path / "s" / "results.csv")
    # zero-shot, then (scratch, fine-tune full, fine-tune spider) x n in {4, 8} x lr in {1e-3, 3e-3}
    assert len(rows) == 1 + 3 * 2 * 2
    assert [r["method"] for r in rows].count("zero-shot") == 1
    for method, strategy in (("scratch", ""), ("finetune", "full"), ("finetune", "spider")):
        for n in ("4", "8"):
            group = [
                r for r in rows if (r["method"], r["strategy"], r["n"]) == (method, strategy, n)
            ]
            assert len(group) == 2 and [r["selected"] for r in group].count("True") == 1
            best = min(group, key=lambda r: float(r["val_rel_l2"]))
            assert best["selected"] == "True"
    for r in rows:
        assert r["status"] == "ok" and 0 < float(r["test_rel_l2"]) < 10
        assert r["test_samples"] == "8" and int(r["parameters"]) == 67329
        if r["method"] != "scratch":  # forgetting: the pre-training tasks were evaluated too
            assert float(r["retained_rel_l2"]) > 0 and r["retained_rel_l2[helmholtz]"] != ""
    # every downstream run took at least the step budget, whatever n
    assert all(int(r["steps"]) >= 6 for r in rows if r["method"] != "zero-shot")
    text = report.read_text()
    assert "## Headline" in text and "![error vs n](error_vs_n.png)" in text
    assert "![forgetting](forgetting.png)" in text and "| spider |" in text
    for png in ("error_vs_n.png", "forgetting.png", "data/poisson-ood.png"):
        assert (tmp_path / "s" / png).stat().st_size > 10_000, png
    # the forgetting table: one line per selected fine-tuned row, changes against zero-shot
    f = experiments.forgetting(study, experiments.rows_from_points(study, []) or _typed(rows))
    assert len(f) == 4 and {x["strategy"] for x in f} == {"full", "spider"}
    zero = next(r for r in rows if r["method"] == "zero-shot")
    for x in f:
        assert x["retained_change"] == pytest.approx(x["retained"] - float(zero["retained_rel_l2"]))
    assert json.loads((tmp_path / "s" / "study.json").read_text()) == study.to_dict()
    # the same sweep again does nothing new and gives the same table; another study is refused
    before = (tmp_path / "s" / "results.csv").read_text()
    experiments.sweep(study, tmp_path / "s", progress=False)
    after = (tmp_path / "s" / "results.csv").read_text()
    strip = lambda t: [line.split(",")[:16] for line in t.splitlines()]  # noqa: E731
    assert strip(before) == strip(after)
    with pytest.raises(ValueError, match="holds another study .*steps"):
        experiments.sweep(_tiny(["steps=7"]), tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="n_values up to 16 need another --out"):
        experiments.sweep(_tiny(["n_values=[4, 16]"]), tmp_path / "s", progress=False)
    # extending the grid with a strategy keeps every finished point and adds the new ones
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").glob("runs/**/point.json")}
    wider = _tiny(['strategies=["full", "spider", "magnitude"]'])
    experiments.sweep(wider, tmp_path / "s", progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    rows = experiments.read_csv(tmp_path / "s" / "results.csv")
    assert len(rows) == 1 + 4 * 2 * 2 and "| magnitude |" in report.read_text()
    assert json.loads((tmp_path / "s" / "study.json").read_text()) == wider.to_dict()


@pytest.mark.slow
def test_killed_sweep_resumes_and_other_executors_agree(tmp_path):
    out = tmp_path / "s"
    args = ["sweep", "demo", *sum((["--set", o] for o in TINY), []), "--out", str(out)]
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
    r = scifm(*args)
    assert r.returncode == 0, r.stderr
    for p, (mtime, text) in finished.items():  # finished points were not redone
        assert p.stat().st_mtime_ns == mtime and p.read_text() == text
    assert len(list(out.glob("runs/**/point.json"))) == 9
    assert len(experiments.read_csv(out / "results.csv")) == 9
    assert "the n fine-tuning needs" in r.stdout and "report.md" in r.stdout

    # the other executors give the resumed inline sweep's numbers: local processes run both
    # stages (fine-tuning waits for pre-training), submitit one scratch point
    inline = {r["run"]: r for r in experiments.read_csv(out / "results.csv")}
    one = ["n_values=[4]", "lr_grid=[1e-3]"]
    runs = {
        "local": (["--jobs", "2"], [*one, 'methods=["scratch", "finetune"]']),
        "submitit": (["--executor", "submitit-local"], [*one, 'methods=["scratch"]']),
    }
    for name, (flags, sets) in runs.items():
        sets = sum((["--set", o] for o in [*TINY, *sets]), [])
        r = scifm("sweep", "demo", *sets, "--out", str(tmp_path / name), *flags)
        assert r.returncode == 0, r.stderr
        rows = experiments.read_csv(tmp_path / name / "results.csv")
        assert len(rows) == (2 if name == "local" else 1)
        for y in rows:
            x = inline[y["run"]]
            assert math.isclose(float(x["test_rel_l2"]), float(y["test_rel_l2"]), rel_tol=1e-5)
    assert any((tmp_path / "submitit" / "submitit").iterdir())  # the job went through submitit


def _row(preset, method, n, err, strategy="", params=1000):
    return {
        "preset": preset,
        "parameters": params,
        "task": "poisson-ood",
        "system": "poisson",
        "shift": "strong shift",
        "method": method,
        "strategy": strategy,
        "n": n,
        "lr": 1e-3,
        "selected": True,
        "status": "ok",
        "val_rel_l2": err,
        "test_rel_l2": err,
        "test_rel_l2_std": 0.1 * err,
        "test_samples": 100,
        "retained_rel_l2": "",
        "steps": 10,
        "train_seconds": 1.0,
        "seconds": 1.0,
        "run": f"runs/{preset}/{method}/{n}",
    }


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
            _row(preset, "scratch", 8, 0.4, params=params),
            _row(preset, "scratch", 64, 0.2, params=params),
        ]
        rows += [
            _row(preset, "finetune", 8, 0.4 / gain, "full", params),
            _row(preset, "finetune", 64, 0.1, "full", params),
        ]
    (tmp_path / "data").mkdir()
    for task in ("poisson", "helmholtz", "poisson-ood"):
        data.generate(study.tasks[task].build(), 2, 16, 0, tmp_path / "data" / f"{task}-test.h5")
    report = experiments._report.write_report(study, rows, tmp_path).read_text()
    assert "poisson-ood: fno-64k 2x -> fno-1m 4x (grows)" in report
    assert (tmp_path / "gain_vs_size.png").stat().st_size > 10_000
    assert "![gain vs size](gain_vs_size.png)" in report
    # fno-1m: fine-tuned error 0.1 at 8 already beats scratch's 0.2 at 64: a lower bound of 8x
    line = next(h for h in experiments.headline(study, rows) if h["preset"] == "fno-1m")
    assert line["bound"] and line["saving"] == 8
