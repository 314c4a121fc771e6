"""The command line: real commands in subprocesses, user errors as one line, killed runs resume."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from scifm import data, pdes
from scifm.cli import main


def scifm(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "scifm.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_generate_and_inspect(tmp_path):
    out = tmp_path / "h.h5"
    r = scifm(
        "generate",
        "helmholtz",
        "--n",
        "12",
        "--resolution",
        "32",
        "--seed",
        "3",
        "--omega",
        "2.5,3",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    with data.open(out) as ds:
        assert len(ds) == 12 and ds.resolution == 32
        omega = ds.coefficients[:, 5]
        assert omega.min() >= 2.5 and omega.max() <= 3.0
    r = scifm("inspect", str(out), "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    assert "helmholtz" in r.stdout and "omega" in r.stdout
    assert (tmp_path / "h.png").exists() and (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "heat", "--n", "2"], "valid systems: poisson, advdiff, helmholtz"),
        (["generate", "poisson", "--n", "0"], "n must be an integer >= 1"),
        (["generate", "poisson", "--n", "2", "--resolution", "33"], "even integer >= 16"),
        (["generate", "poisson", "--n", "2", "--resolution", "8"], "even integer >= 16"),
        (["generate", "poisson", "--n", "2", "--eig", "5,1"], "0 < low <= high"),
        (["generate", "poisson", "--n", "2", "--eig", "0,1"], "0 < low <= high"),
        (["generate", "poisson", "--n", "2", "--eig", "5"], "LO,HI"),
        (["generate", "advdiff", "--n", "2", "--ratio", "-1,1"], "0 <= low <= high"),
        (
            ["generate", "helmholtz", "--n", "2", "--omega", "1.973920880217872,1.973920880217872"],
            "resonant",
        ),
        (["generate", "poisson", "--n", "2", "--omega", "1,2"], "does not apply to poisson"),
        (["generate", "poisson", "--n", "2", "--out", "/proc/x.h5"], "cannot write"),
        (["generate", "poisson", "--n", "2", "--out", "/no/such/dir/x.h5"], "does not exist"),
        (["generate", "poisson", "--n", "two"], "valid integer"),
        (["inspect", "missing.h5"], "no such dataset"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, args, message):
    if "--out" not in args and args[0] == "generate":
        args = [*args, "--out", str(tmp_path / "x.h5")]
    r = scifm(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scifm: error:"), r.stderr
    assert message in lines[0]
    assert r.stdout.strip() == ""
    assert list(tmp_path.iterdir()) == []


def _replace(f, name, array):
    """Swap dataset ``name`` of the open file ``f`` for ``array``, keeping its attributes."""
    attrs = dict(f[name].attrs)
    del f[name]
    f[name] = array
    f[name].attrs.update(attrs)


def _shrink_to_zero_samples(f):
    for name in ("inputs", "outputs", "coefficients", "parameters"):
        _replace(f, name, f[name][:0])


def _other_layout(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)


def _reference_tensor_width(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f["fields"], f["tensor"] = np.zeros((4, 2, 16, 16), "f4"), np.ones((4, 4), "f4")


# a generated 4-sample 16x16 Poisson file, then broken in one way
BROKEN = {
    "no-coefficients": (
        lambda f: f.__delitem__("coefficients"),
        "the scifm layout needs a dataset 'coefficients', which the file lacks",
    ),
    "coefficient-rows": (
        lambda f: _replace(f, "coefficients", f["coefficients"][:3]),
        "coefficients has 3 rows for 4 samples; the scifm layout needs one row per sample, (4, 6)",
    ),
    "outputs-count": (
        lambda f: _replace(f, "outputs", np.zeros((5, 1, 16, 16), "f4")),
        "outputs has shape (5, 1, 16, 16) but inputs (4, 1, 16, 16)",
    ),
    "3-d-fields": (
        lambda f: (
            _replace(f, "inputs", f["inputs"][:, 0]),
            _replace(f, "outputs", f["outputs"][:, 0]),
        ),
        "inputs has shape (4, 16, 16); the scifm layout needs (N, C, H, W)",
    ),
    "zero-samples": (_shrink_to_zero_samples, "holds no samples"),
}


@pytest.mark.parametrize("case", [*BROKEN, "other-layout", "reference-tensor-width"])
def test_inspect_reports_a_malformed_file_in_one_line(tmp_path, capsys, case):
    path = data.generate(pdes.Poisson(), 4, 16, 0, tmp_path / "bad.h5")
    if case == "other-layout":
        _other_layout(path)
        message = "matches no known dataset layout: it holds ['x']; known layouts are scifm: "
    elif case == "reference-tensor-width":
        _reference_tensor_width(path)
        message = "tensor has 4 columns, which names no system"
    else:
        breaks, message = BROKEN[case]
        with h5py.File(path, "r+") as f:
            breaks(f)
    before = sorted(tmp_path.iterdir())
    assert main(["inspect", str(path), "--json", str(tmp_path / "s.json")]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scifm: error: {path}"), err
    assert message in lines[0]
    assert out == ""
    assert sorted(tmp_path.iterdir()) == before  # no picture, no JSON


def test_inspect_shows_a_non_square_grid_as_h_by_w(tmp_path, capsys):
    path = data.generate(pdes.Poisson(), 4, 32, 0, tmp_path / "wide.h5")
    with h5py.File(path, "r+") as f:
        for name in ("inputs", "outputs"):
            _replace(f, name, f[name][..., :16])
    assert main(["inspect", str(path), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "32x16" in out and "16x16" not in out and "32x32" not in out
    assert json.loads((tmp_path / "s.json").read_text())["grid"] == [32, 16]
    assert (tmp_path / "wide.png").exists()


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "p.h5"
    assert (
        scifm("generate", "poisson", "--n", "2", "--resolution", "16", "--out", str(out)).returncode
        == 0
    )
    before = out.read_bytes()
    r = scifm("generate", "poisson", "--n", "3", "--resolution", "16", "--out", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert out.read_bytes() == before
    r = scifm(
        "generate", "poisson", "--n", "3", "--resolution", "16", "--out", str(out), "--overwrite"
    )
    assert r.returncode == 0
    with data.open(out) as ds:
        assert len(ds) == 3


@pytest.mark.slow
def test_sigkill_mid_generation_leaves_no_complete_file_and_resumes(tmp_path):
    out = tmp_path / "big.h5"
    partial = tmp_path / "big.h5.partial"
    args = [
        sys.executable,
        "-m",
        "scifm.cli",
        "generate",
        "advdiff",
        "--n",
        "6000",
        "--resolution",
        "64",
        "--chunk-size",
        "200",
        "--seed",
        "4",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once a few chunks are on disk
        time.sleep(0.05)
        try:
            with h5py.File(partial, "r", locking=False) as f:
                if f.attrs["n_written"] >= 600:
                    break
        except (OSError, KeyError):
            continue
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert partial.exists()
    with pytest.raises(ValueError):
        data.open(partial)

    r = scifm(*args[3:])
    assert r.returncode == 0, r.stderr
    assert not partial.exists()
    reference = data.generate(
        pdes.AdvectionDiffusion(), 6000, 64, 4, tmp_path / "ref.h5", chunk_size=1000
    )
    with data.open(out) as a, data.open(reference) as b:
        np.testing.assert_array_equal(a.outputs[:], b.outputs[:])
        np.testing.assert_array_equal(a.coefficients, b.coefficients)


def test_demo_refuses_a_foreign_directory_and_touches_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = scifm("demo", "--out", str(tmp_path))
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == f"scifm: error: {tmp_path} exists and is not a scifm sweep; choose another --out"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_bench_data_writes_json(tmp_path):
    out = tmp_path / "b.json"
    r = scifm(
        "bench", "data", "--n", "64", "--resolution", "32", "--memory-n", "32,64", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["system"] for row in rows] == ["poisson", "advdiff", "helmholtz"]
    for row in rows:
        assert row["samples_per_s"] > 0 and row["samples_per_s_one_thread"] > 0
        assert row["process_samples_per_s"] > 0 and row["peak_rss_mib_n64"] > 0


def test_help_explains_commands():
    r = scifm("generate", "--help")
    assert r.returncode == 0
    for flag in ("--eig", "--ratio", "--omega", "--overwrite", "--seed"):
        assert flag in r.stdout


def test_a_run_plot_is_redrawn_at_most_every_so_often(tmp_path, monkeypatch):
    from scifm.cli import _run

    clock = [100.0]
    monkeypatch.setattr(_run.time, "monotonic", lambda: clock[0])
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    drawn = []
    progress = _run.BarAndPlot("t", str(tmp_path), drawn.append, every_s=30.0)
    progress.start(10, 0)
    for t, expected in ((110.0, 0), (131.0, 1), (150.0, 1), (161.5, 2)):
        clock[0] = t
        progress.evaluated("rel_l2", 0.1, "step 1")
        assert len(drawn) == expected, t
    progress.close()


def test_commands_use_a_persistent_compilation_cache_when_asked(monkeypatch, tmp_path):
    import os

    from scifm import cli

    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.pop("SCIFM_COMPILATION_CACHE", None)
    monkeypatch.setattr(os, "environ", env)
    env["XDG_CACHE_HOME"] = str(tmp_path)
    assert cli.use_compilation_cache() is None and "JAX_COMPILATION_CACHE_DIR" not in env
    for off in ("off", "0"):
        env["SCIFM_COMPILATION_CACHE"] = off
        assert cli.use_compilation_cache() is None and "JAX_COMPILATION_CACHE_DIR" not in env
    env["SCIFM_COMPILATION_CACHE"] = "on"
    assert cli.use_compilation_cache() == str(tmp_path / "scifm" / "jax")
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "scifm" / "jax")  # children too
    assert env["JAX_COMPILATION_CACHE_MAX_SIZE"] == str(2**30)
    del env["JAX_COMPILATION_CACHE_DIR"]
    env["SCIFM_COMPILATION_CACHE"] = str(tmp_path / "mine")
    assert cli.use_compilation_cache() == str(tmp_path / "mine")
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax's")  # JAX's own setting is kept
    assert cli.use_compilation_cache() == str(tmp_path / "jax's")
