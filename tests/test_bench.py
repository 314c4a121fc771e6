"""Benchmarks run and write their JSON (their numbers are recorded in BENCHMARKS.md, not asserted).

Every bad option and every unusable ``--out`` is refused in one line with exit status 2
before anything is measured, and leaves the directory it ran in as it was.
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scifm import bench
from scifm.bench import fno as bench_fno
from scifm.bench import pinn as bench_pinn
from scifm.cli import main


def test_bench_fno_writes_json_to_a_fresh_default_name(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "scifm.cli",
            "bench",
            "fno",
            "--presets",
            "fno-64k,fno-67m",
            "--resolutions",
            "32",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    [out] = tmp_path.iterdir()  # no --out: bench-fno-<timestamp>.json where it ran
    assert out.name.startswith("bench-fno-") and out.suffix == ".json"
    assert f"wrote {out.name}" in r.stdout
    result = json.loads(out.read_text())
    [row] = result["rows"]
    assert row["preset"] == "fno-64k" and row["resolution"] == 32 and row["batch"] == 8
    assert row["step_seconds"] > 0 and row["xla_peak_mib"] > 0 and row["parameters"] == 67_329
    assert result["skipped"] == ["fno-67m at 32: 32 modes need >= 64 points"]
    assert "skipped: fno-67m" in r.stdout
    # the PyTorch peer (the dev extra installs it) timed in the same run, never a stored time
    assert not any("reference" in key for key in row)
    assert row["peer"].startswith("pytorch ") and row["peer_parameters"] == 67_329
    assert row["speedup"] == row["peer_step_seconds"] / row["step_seconds"]
    assert "torch s/step" in r.stdout and "speed-up" in r.stdout
    # neuraloperator's own FNO (also in the dev extra), set to scifm's modes and layers
    assert row["neuralop_peer"].startswith("neuralop 2.")
    assert row["neuralop_speedup"] == row["neuralop_peer_step_seconds"] / row["step_seconds"]
    assert row["neuralop_peer_parameters"] == 67_329
    assert "neuralop s/step" in r.stdout


def test_bench_federated_times_the_vmapped_round_beside_clients_in_turn(tmp_path, capsys):
    out = tmp_path / "fed.json"
    argv = ["bench", "federated", *TINY["federated"], "--clients", "1,3", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert [r["clients"] for r in result["rows"]] == [1, 3]
    for row in result["rows"]:
        assert row["vmapped_s"] > 0 and row["mapped_s"] > 0 and row["in_turn_s"] > 0
        assert row["speedup"] == row["in_turn_s"] / row["mapped_s"]
    assert "speed-up" in capsys.readouterr().out


def test_torch_peer_is_the_same_network():
    """scifm's FNO weights copied into the peer give the same output: the benchmark times
    the same computation in both libraries."""
    import torch

    from scifm.bench import _torch
    from scifm.models import FNO

    net = FNO(3, 2, width=6, modes=3, layers=2, key=jax.random.key(1))
    peer = _torch._model(3, 2, width=6, modes=3, layers=2)

    def conv(p):  # Pointwise (out, in) -> Conv2d (out, in, 1, 1)
        return {
            "weight": torch.tensor(np.asarray(p.weight))[..., None, None],
            "bias": torch.tensor(np.asarray(p.bias)),
        }

    state = {}
    for name, p in (("lift", net.lift), ("hidden", net.project_hidden), ("out", net.project_out)):
        state.update({f"{name}.{k}": v for k, v in conv(p).items()})
    for i, (k, w) in enumerate(zip(net.spectral, net.skip, strict=True)):
        state.update({f"skip.{i}.{key}": v for key, v in conv(w).items()})
        re, im = np.asarray(k.weight)  # (pos/neg, x, y, in, out) -> (pos/neg, in, out, x, y)
        weight = (re + 1j * im).transpose(0, 3, 4, 1, 2)
        state[f"spectral.{i}.weight"] = torch.tensor(weight.astype(np.complex64))
    peer.load_state_dict(state)
    x = np.random.default_rng(0).normal(size=(2, 3, 12, 10)).astype(np.float32)
    ours = np.asarray(jax.vmap(net)(jnp.asarray(x)))
    with torch.no_grad():
        theirs = peer(torch.tensor(x)).numpy()
    assert theirs.shape == ours.shape == (2, 2, 12, 10)
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5 * np.abs(ours).max())
    assert _torch.parameters(6, 3, 3, 2, layers=2) == sum(
        x.size for x in jax.tree_util.tree_leaves(net) if hasattr(x, "dtype")
    )


def test_without_torch_the_fno_bench_says_what_to_install(monkeypatch, tmp_path, capsys):
    from scifm._checks import UserError
    from scifm.bench import _torch

    monkeypatch.setattr(_torch, "available", lambda library="torch": False)
    result = bench_fno.bench_fno(("fno-64k",), (16,), {16: 1}, steps=1, report=lambda r: None)
    assert result["notes"] == [_torch.INSTALL_HINT] and "pip install 'scifm[bench]'" in (
        _torch.INSTALL_HINT
    )
    assert not any(key.startswith("peer") for key in result["rows"][0])
    with pytest.raises(UserError, match=r"pip install 'scifm\[bench\]'"):
        bench_fno.bench_fno(("fno-64k",), (16,), peer=True)
    monkeypatch.chdir(tmp_path)
    assert "pip install 'scifm[bench]'" in _refused(
        ["bench", "fno", *TINY["fno"], "--peer"], capsys
    )
    assert list(tmp_path.iterdir()) == []


def test_finetune_strategies_bench_reports_against_full():
    result = bench_fno.bench_finetune(
        "fno-64k", 16, 2, ("full", "spider"), steps=2, report=lambda r: None
    )
    full, spider = result["rows"]
    assert full["strategy"] == "full" and spider["step_seconds"] > 0
    # the ratios are of the two steps timed in this run
    ratio = spider["step_seconds"] / full["step_seconds"]
    assert spider["time_vs_full"] == pytest.approx(ratio, rel=1e-9)
    # SPIDER keeps theta_0, I_pre and G_t: three more parameter-sized buffers (XLA on the CPU)
    assert spider["xla_peak_mib"] > full["xla_peak_mib"]
    assert spider["memory_vs_full"] == pytest.approx(
        spider["xla_peak_mib"] / full["xla_peak_mib"], rel=1e-9
    )
    table = bench_fno.finetune_table(result["rows"])
    assert table.title == "fno-64k at 16x16, batch 2"
    assert [row[0] for row in table.rows] == ["full", "spider"] and table.rows[0][2] == "1.000"


def test_xla_memory_takes_a_donated_argument_off_once():
    """``x + 1`` on 1 MiB: 2 MiB (argument and output), 1 MiB when the output reuses x."""
    x = jnp.asarray(np.ones((512, 512), np.float32))
    plain = bench.xla_memory_bytes(jax.jit(lambda x: x + 1).lower(x).compile())
    donated = bench.xla_memory_bytes(jax.jit(lambda x: x + 1, donate_argnums=0).lower(x).compile())
    assert 2 * 2**20 <= plain < 2.1 * 2**20
    assert 2**20 <= donated < 1.1 * 2**20


def test_pinn_table_shows_unknown_memory_and_skips_as_dashes():
    measured = dict(
        operator="laplacian", dim=1000, estimator="stde", plain_s=0.002, step_s=0.003,
        ratio=1.5, it_per_s=250.0, peak_rss_bytes=300 * 2**20, step_xla_bytes=None,
    )  # fmt: skip
    skipped = dict(operator="laplacian", dim=10, estimator="sdgd", skipped="num_samples > d")
    table = bench_pinn.pinn_table([measured, skipped])
    assert len(table.columns) == 10
    assert table.rows[0][3:] == ("2.0", "3.0", "1.50", "250.0", "300", "-", "")
    assert table.rows[1][3:] == ("-",) * 6 + ("num_samples > d",)


def test_write_json_never_replaces_a_file_that_appeared(tmp_path):
    out = tmp_path / "r.json"
    assert bench.write_json({"a": 1}, out) == out and json.loads(out.read_text()) == {"a": 1}
    with pytest.raises(FileExistsError, match="appeared while measuring"):
        bench.write_json({"a": 2}, out)
    assert json.loads(out.read_text()) == {"a": 1}
    [kept] = [p for p in tmp_path.iterdir() if p != out]  # the results are not lost
    assert kept.name.startswith("r-") and json.loads(kept.read_text()) == {"a": 2}
    bench.write_json({"a": 3}, out, overwrite=True)
    assert json.loads(out.read_text()) == {"a": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, kept.name])


@pytest.fixture
def no_measuring(monkeypatch):
    """Any measurement fails the test: refusals must come before the first one."""
    from scifm.bench import _data
    from scifm.bench import federated as _federated
    from scifm.bench import fno as _fno
    from scifm.bench import pinn as _pinn

    def measured(*args, **kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(_fno, "_Stepper", measured)
    monkeypatch.setattr(_pinn, "_run_worker", measured)
    monkeypatch.setattr(_data, "_peak_memory", measured)
    monkeypatch.setattr(_federated, "_setup", measured)


TINY = {
    "data": ["--resolution", "16", "--n", "1", "--memory-n", "1"],
    "fno": ["--presets", "fno-64k", "--resolutions", "16", "--steps", "1"],
    "finetune": ["--model", "fno-64k", "--resolution", "16", "--batch", "1", "--steps", "1"],
    "pinn": ["--dims", "10", "--estimators", "stde", "--num-samples", "2", "--repeats", "1"],
    "federated": [
        "--flower-clients",
        "0",
        "--presets",
        "fno-64k",
        "--clients",
        "2",
        "--resolution",
        "16",
        "--local-steps",
        "1",
        "--rounds",
        "1",
    ],
}

BAD_OPTIONS = [
    ("data", "--n", "0", "n must be an integer >= 1, got 0"),
    ("data", "--n", "-3", "n must be an integer >= 1, got -3"),
    ("data", "--memory-n", "", "--memory-n takes a comma-separated list of at least one value"),
    ("data", "--memory-n", "1024,0", "memory_n must be integers >= 1, got 0"),
    ("data", "--memory-n", "a,b", "--memory-n takes a comma-separated list, got 'a,b'"),
    ("data", "--resolution", "8", "resolution must be an even integer >= 16, got 8"),
    ("fno", "--steps", "0", "steps must be an integer >= 1, got 0"),
    ("fno", "--resolutions", ",", "--resolutions takes a comma-separated list of at least one"),
    ("fno", "--resolutions", "64,-1", "resolutions must be integers >= 1, got -1"),
    ("fno", "--resolutions", "64.5", "--resolutions takes a comma-separated list, got '64.5'"),
    ("fno", "--presets", "", "--presets takes a comma-separated list of at least one value"),
    ("fno", "--presets", "fno-9z", "unknown model preset 'fno-9z'"),
    ("finetune", "--batch", "0", "batch must be an integer >= 1, got 0"),
    ("finetune", "--steps", "0", "steps must be an integer >= 1, got 0"),
    ("finetune", "--resolution", "0", "resolution must be an integer >= 1, got 0"),
    ("finetune", "--resolution", "4", "fno-64k has 4 modes, so resolution must be >= 8, got 4"),
    ("finetune", "--model", "fno-9z", "unknown model preset 'fno-9z'"),
    ("federated", "--clients", "0", "--clients must be an integer >= 1, got 0"),
    ("federated", "--clients", "", "--clients takes a comma-separated list of at least one"),
    ("federated", "--presets", "fno-9z", "unknown model preset 'fno-9z'"),
    ("federated", "--resolution", "8", "resolution must be an even integer >= 16, got 8"),
    ("federated", "--presets", "fno-4m", "--resolution 16 is too coarse for fno-4m"),
    ("federated", "--rounds", "0", "--rounds must be an integer >= 1, got 0"),
    ("pinn", "--dims", "", "--dims takes a comma-separated list of at least one value"),
    ("pinn", "--dims", "0", "dims must be integers >= 1, got 0"),
    ("pinn", "--dims", "1e3,x", "--dims takes a comma-separated list, got '1e3,x'"),
    ("pinn", "--dims", "1", "laplacian needs dims >= 2, got 1"),
    ("pinn", "--estimators", "", "--estimators takes a comma-separated list of at least one"),
    ("pinn", "--estimators", "stde,nope", "unknown estimator 'nope'"),
    ("pinn", "--operators", ",", "--operators takes a comma-separated list of at least one"),
    ("pinn", "--operators", "wave", "unknown operator 'wave'; valid: laplacian, biharmonic"),
    ("pinn", "--num-samples", "0", "num_samples must be an integer >= 1, got 0"),
    ("pinn", "--batch-size", "0", "batch_size must be an integer >= 1, got 0"),
    ("pinn", "--repeats", "-1", "repeats must be an integer >= 1, got -1"),
    ("pinn", "--timeout", "0", "timeout_s must be a positive number of seconds, got 0.0"),
    ("pinn", "--timeout", "nan", "timeout_s must be a positive number of seconds, got nan"),
]


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("scifm: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "wrote" not in out
    return err


@pytest.mark.parametrize(("command", "option", "value", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_before_measuring(
    tmp_path, monkeypatch, capsys, no_measuring, command, option, value, message
):
    monkeypatch.chdir(tmp_path)  # where the default output would go
    argv = ["bench", command, *TINY[command], option, value]
    assert message in _refused(argv, capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", list(TINY))
def test_unusable_out_is_refused_before_measuring(
    tmp_path, monkeypatch, capsys, no_measuring, command
):
    monkeypatch.chdir(tmp_path)
    kept = tmp_path / "results.json"
    kept.write_text('{"kept": true}')
    (tmp_path / "dir").mkdir()
    base = ["bench", command, *TINY[command], "--out"]
    assert "results.json exists; pass --overwrite to replace it" in _refused(
        [*base, "results.json"], capsys
    )
    assert "dir is a directory" in _refused([*base, "dir"], capsys)
    assert "output directory missing does not exist" in _refused([*base, "missing/r.json"], capsys)
    assert kept.read_text() == '{"kept": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "results.json"]
    assert list((tmp_path / "dir").iterdir()) == []


def test_overwrite_is_checked_then_measures(tmp_path, monkeypatch, capsys, no_measuring):
    """With --overwrite an existing --out passes the check and measuring starts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.json").write_text("{}")
    argv = ["bench", "fno", *TINY["fno"], "--out", "r.json", "--overwrite"]
    with pytest.raises(AssertionError, match="measured before refusing"):
        main(argv)
    assert (tmp_path / "r.json").read_text() == "{}"


def test_default_output_is_a_fresh_name_in_the_current_directory():
    path = bench.default_output("pinn")
    assert path.parent.name == "" and path.name.startswith("bench-pinn-")
    assert path.suffix == ".json" and len(path.stem) == len("bench-pinn-20250101-120000")


def test_a_benchmark_script_checks_before_measuring_and_writes_complete_json(tmp_path, capsys):
    from scifm._checks import UserError

    measured = []

    def refuse():
        raise UserError("--n must be >= 4")

    out = tmp_path / "r.json"
    assert bench.run_script(refuse, measured.append, out, False) == 2
    assert measured == [] and list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err == "error: --n must be >= 4\n"
    assert bench.run_script(lambda: 3, lambda n: {"n": n}, out, False) == 0
    assert json.loads(out.read_text()) == {"n": 3} and f"wrote {out}" in capsys.readouterr().out
    assert bench.run_script(lambda: 4, measured.append, out, False) == 2  # exists: no measuring
    assert measured == [] and json.loads(out.read_text()) == {"n": 3}
