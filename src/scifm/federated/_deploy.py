"""Running a federation on the Flower deployment engine: one SuperLink, one SuperNode per lab.

:func:`launch` starts everything on this machine (loopback) as separate processes, the way a
federation runs across machines, submits scifm's Flower app and follows the run;
:func:`start_superlink`, :func:`start_supernode` and :func:`submit` are its pieces, and what the
``scifm federated server`` and ``node`` commands run on the machines of a real federation.

Each Flower process gets its own ``FLWR_HOME`` (Flower keeps its state and app cache there),
telemetry off, and no installation of app dependencies at run time (scifm is installed on every
machine). TLS and node authentication are Flower's: the SuperLink serves TLS with a certificate
signed by a CA the nodes trust, and, with authentication on, accepts only nodes whose public
keys were registered (``flwr supernode register``); any other node is refused.

Layout of a launched federation's directory ``OUT``:
``server/`` the run directory (config, metrics, state after each round, final model);
``nodes/NAME/`` what client NAME keeps (its optimiser state after each round);
``flower/`` the engine's homes, the plan, and one log per process (``*.log``).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scifm._checks import UserError
from scifm._io import atomic_write_bytes, atomic_write_json, read_jsonl
from scifm._progress import NoProgress, RunProgress
from scifm._runs import CONFIG, METRICS, RESULT, RunDirectory
from scifm.federated._clients import check_clients, show_layout

ERROR_FILE = "error.txt"  # the server's last error (written by the ServerApp beside server/)


def require_flower() -> None:
    """Refuse, in one line, when the ``flower`` extra is not installed."""
    if importlib.util.find_spec("flwr") is None:
        raise UserError(
            "the Flower runner needs Flower: pip install 'scifm[flower]' (the simulation "
            "runner, scifm federated study, does not)"
        )


def app_dir() -> Path:
    """The folder of scifm's Flower app (its ``pyproject.toml``)."""
    return Path(str(importlib.resources.files("scifm.federated") / "app"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, before anything is started."""
    if not 1 <= port <= 65535:
        raise UserError(f"port {port} is not a TCP port (1..65535)")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise UserError(
                f"port {port} on {host} is in use; choose another --port"
            ) from None


def check_local_clients(nodes: dict[str, Path], batch_size: int) -> None:
    """Refuse, before any process starts, a local client's file that is missing or malformed,
    of other channels or grid than the first, or smaller than a batch (the server checks
    remote clients when they join)."""
    from scifm.data import open as open_dataset

    layouts, sizes = {}, {}
    for name, path in nodes.items():
        if not Path(path).is_file():
            raise UserError(f"client {name}: no such file {path}")
        with contextlib.closing(open_dataset(path)) as ds:
            layouts[name] = (tuple(ds.input_names), tuple(ds.output_names), tuple(ds.grid))
            sizes[name] = len(ds)
    check_clients(layouts, sizes, batch_size, show=show_layout)


@dataclass(frozen=True)
class TLS:
    """Certificates for Flower's TLS: the CA the nodes trust, the SuperLink's certificate and
    key (PEM files)."""

    ca: Path
    certificate: Path
    key: Path


def make_certificates(folder: str | Path, hosts: list[str], days: int = 365) -> TLS:
    """A certificate authority and a SuperLink certificate signed by it for ``hosts`` (names
    or IP addresses the nodes dial), ECDSA P-384, valid ``days``: ``ca.crt`` (give it to every
    node), ``server.pem`` and ``server.key`` (keep them on the server), in ``folder``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not hosts:
        raise UserError("name at least one host the nodes will dial (e.g. --host 127.0.0.1)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = lambda text: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])  # noqa: E731
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())

    def certificate(subject, public_key, extension, critical):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name("scifm federation CA"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(extension, critical=critical)
            .sign(ca_key, hashes.SHA256())
        )

    def alternative(host):
        try:
            return x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            return x509.DNSName(host)

    authority = x509.BasicConstraints(ca=True, path_length=None)
    ca = certificate(name("scifm federation CA"), ca_key.public_key(), authority, True)
    names = x509.SubjectAlternativeName([alternative(h) for h in hosts])
    server = certificate(name(hosts[0]), key.public_key(), names, False)
    pem = serialization.Encoding.PEM
    private = serialization.PrivateFormat.PKCS8
    tls = TLS(folder / "ca.crt", folder / "server.pem", folder / "server.key")
    atomic_write_bytes(tls.ca, lambda fh: fh.write(ca.public_bytes(pem)))
    atomic_write_bytes(tls.certificate, lambda fh: fh.write(server.public_bytes(pem)))
    atomic_write_bytes(
        tls.key,
        lambda fh: fh.write(key.private_bytes(pem, private, serialization.NoEncryption())),
    )
    tls.key.chmod(0o600)
    return tls


def make_node_key(path: str | Path) -> Path:
    """A SuperNode's authentication key pair, ECDSA P-384 in OpenSSH format (as ``ssh-keygen -t
    ecdsa -b 384`` writes): the private key at ``path`` (stays on the node), the public key
    at ``path.pub`` (registered with the server)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    ssh = serialization.Encoding.OpenSSH
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(path, lambda fh: fh.write(private))
    path.chmod(0o600)
    public = key.public_key().public_bytes(ssh, serialization.PublicFormat.OpenSSH)
    atomic_write_bytes(Path(f"{path}.pub"), lambda fh: fh.write(public))
    return path


def _flower_env(home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FLWR_HOME=str(home), FLWR_TELEMETRY_ENABLED="0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _start(command: list[str], home: Path, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen(
            command, env=_flower_env(home), stdout=fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def start_superlink(
    work: Path, host: str, port: int, *, tls: TLS | None = None, authenticate: bool = False
) -> subprocess.Popen:
    """A SuperLink on ``host:port`` (Flower's Fleet, Control and runtime APIs share it)."""
    command = [_tool("flower-superlink"), "--host", host, "--port", str(port)]
    command += ["--disable-runtime-dependency-installation"]
    if tls is None:
        command.append("--insecure")
    else:
        command += ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.certificate)]
        command += ["--ssl-keyfile", str(tls.key)]
    if authenticate:
        command.append("--enable-supernode-auth")
    return _start(command, work / "link", work / "superlink.log")


def start_supernode(
    work: Path,
    name: str,
    data: Path,
    state: Path,
    superlink: str,
    *,
    port: int | None = None,
    ca: Path | None = None,
    private_key: Path | None = None,
    retries: int | None = 0,
) -> subprocess.Popen:
    """A lab's SuperNode: client ``name`` training on ``data``, keeping its state in ``state``
    (``ca``: the CA certificate to trust, for TLS; ``private_key``: its authentication key,
    OpenSSH format; ``retries``: connection attempts before it gives up, None: no limit)."""
    node_config = f"name={json.dumps(name)} data={json.dumps(str(data))} state={json.dumps(str(state))}"
    command = [_tool("flower-supernode"), "--superlink", superlink, "--node-config", node_config]
    command += ["--port", str(port or free_port())]
    if retries is not None:
        command += ["--max-retries", str(retries)]
    command += ["--insecure"] if ca is None else ["--root-certificates", str(ca)]
    if private_key is not None:
        command += ["--auth-supernode-private-key", str(private_key)]
    return _start(command, work / "nodes" / name, work / f"node-{name}.log")


def _cli_home(work: Path, superlink: str, ca: Path | None) -> Path:
    home = work / "cli"
    home.mkdir(parents=True, exist_ok=True)
    security = "insecure = true" if ca is None else f"root-certificates = {json.dumps(str(ca))}"
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "scifm"\n\n[superlink.scifm]\n'
        f'address = "{superlink}"\n{security}\n'
    )
    return home


def register_node(work: Path, superlink: str, public_key: Path, *, ca: Path | None = None) -> None:
    """Register a node's public key with a SuperLink that authenticates nodes."""
    home = _cli_home(work, superlink, ca)
    done = subprocess.run(
        [_tool("flwr"), "supernode", "register", str(public_key), "scifm"],
        env=_flower_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise UserError(f"could not register {public_key}: {_last_line(done.stdout + done.stderr)}")


def submit(work: Path, plan: dict, superlink: str, *, ca: Path | None = None) -> subprocess.Popen:
    """Write the plan and submit scifm's Flower app with it (``flwr run``, logs streamed to
    ``work/run.log``); the returned process ends when the run does."""
    path = atomic_write_json(work / "plan.json", plan)
    home = _cli_home(work, superlink, ca)
    command = [_tool("flwr"), "run", str(app_dir()), "scifm", "--stream"]
    command += ["--run-config", f"plan={json.dumps(str(path.resolve()))}"]
    return _start(command, home, work / "run.log")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def wait_listening(host: str, port: int, process: subprocess.Popen, log: Path, timeout=60.0):
    """Wait until ``process`` accepts connections on ``port``; refuse if it exits first."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if process.poll() is not None:
            raise UserError(f"the SuperLink exited at start: {_last_line(log.read_text())}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise UserError(f"the SuperLink did not listen on {host}:{port} within {timeout:g} s")


def stop_processes(processes) -> None:
    """Stop processes (and what they started: ClientApps, ServerApps): SIGTERM, then SIGKILL."""
    for p in processes:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    until = time.monotonic() + 10
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, until - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def flower_plan(
    out: Path,
    names: list[str],
    *,
    preset: str,
    algorithm,
    aggregator,
    optimizer,
    rounds: int,
    local_steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    evaluate: dict[str, Path],
    eval_every: int,
    deadline: float,
    join_timeout: float,
    min_clients: int | None,
) -> dict:
    """The server's plan: the run's configuration (what a resumed run must match) and how
    long to wait (which may change between attempts)."""
    from scifm.federated._simulate import describe

    k = len(names)
    min_clients = k if min_clients is None else min_clients
    if not 1 <= min_clients <= k:
        raise UserError(f"min_clients must be between 1 and the {k} clients, got {min_clients}")
    if len(set(names)) != k or not k:
        raise UserError(f"give one distinct name per client, got {names}")
    aggregator.check(k, 0)
    return {
        "out": str(out.resolve()),
        "deadline": float(deadline),
        "join_timeout": float(join_timeout),
        "min_clients": int(min_clients),
        "config": {
            "runner": "flower",
            "clients": names,
            "preset": preset,
            "algorithm": describe(algorithm),
            "aggregator": describe(aggregator),
            "optimizer": describe(optimizer),
            "rounds": rounds,
            "local_steps": local_steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "evaluate": {name: str(Path(p).resolve()) for name, p in evaluate.items()},
            "eval_every": eval_every,
        },
    }


def follow(run: subprocess.Popen, out: Path, rounds: int, progress: RunProgress) -> None:
    """Show the run's rounds as the server logs them, until ``run`` (``flwr run``) ends."""
    metrics = out / METRICS
    seen = len(read_jsonl(metrics)) if metrics.exists() else 0
    progress.start(rounds, seen)
    try:
        while run.poll() is None:
            time.sleep(0.5)
            rows = read_jsonl(metrics) if metrics.exists() else []
            for row in rows[seen:]:
                losses = list(row["train_loss"].values())
                progress.step(sum(losses) / len(losses), 0)
                if "test" in row:
                    test = list(row["test"].values())
                    progress.evaluated("test", sum(test) / len(test), f"round {row['round']}")
            seen = max(seen, len(rows))
    finally:
        progress.close()


def launch(
    clients: dict[str, Path],
    out: str | Path,
    *,
    node_keys: dict[str, Path] | None = None,
    **options,
) -> dict:
    """Train over ``clients`` (name -> HDF5 file) with Flower's deployment engine on this
    machine: a SuperLink and one SuperNode per client, separate processes on loopback, as
    :func:`run_federation` with the nodes started here (``node_keys``: each node's private
    key, OpenSSH format, its public key beside it as ``.pub``: authentication on)."""
    keys = dict(node_keys or {})
    return run_federation(
        list(clients), out, nodes=clients, node_keys=keys,
        public_keys=[Path(f"{k}.pub") for k in keys.values()], **options,
    )  # fmt: skip


def run_federation(
    names: list[str],
    out: str | Path,
    *,
    nodes: dict[str, Path] | None = None,
    node_keys: dict[str, Path] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    tls: TLS | None = None,
    public_keys: list[Path] | tuple[Path, ...] = (),
    progress: RunProgress = NoProgress(),
    **settings,
) -> dict:
    """Serve a federation of the clients ``names``: start a SuperLink on ``host:port``, the
    SuperNodes of ``nodes`` (name -> HDF5 file) on this machine if given (other clients run
    ``scifm federated node`` on their own machines), submit scifm's Flower app with the plan
    of ``settings`` (:func:`flower_plan`) and follow it; stop everything when it ends. A rerun with
    the same ``out`` resumes the run at its last round.

    ``tls`` serves the SuperLink over TLS; ``public_keys`` (OpenSSH) turns node
    authentication on and registers those nodes (any other is refused).

    Returns:
        The server's result.json.

    Raises:
        ValueError: bad settings, a port in use, a client refused (bad data), clients that did
            not join, too few clients answered a round within the deadline (the run resumes on
            rerun).
    """
    require_flower()
    out = Path(out)
    spec = flower_plan(out / "server", list(names), **settings)
    RunDirectory.open(out / "server", spec["config"])  # a finished or other run: refuse now
    if out.exists() and not (out / "flower").is_dir() and any(out.iterdir()):
        raise UserError(f"{out} holds something else; choose another --out")
    for key in public_keys:
        if not Path(key).is_file():
            raise UserError(f"no such public key {key}")
    check_local_clients(nodes or {}, settings["batch_size"])
    port = free_port() if port is None else port
    check_port(host, port)
    work = out / "flower"
    error = out / ERROR_FILE
    error.unlink(missing_ok=True)
    superlink = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    processes = [start_superlink(work, host, port, tls=tls, authenticate=bool(public_keys))]
    ca = None if tls is None else tls.ca
    try:
        wait_listening(superlink.split(":")[0], port, processes[0], work / "superlink.log")
        for key in public_keys:
            register_node(work, superlink, Path(key), ca=ca)
        for name, path in (nodes or {}).items():
            processes.append(
                start_supernode(
                    work, name, Path(path).resolve(), (out / "nodes" / name).resolve(), superlink,
                    ca=ca, private_key=(node_keys or {}).get(name),
                )
            )  # fmt: skip
        run = submit(work, spec, superlink, ca=ca)
        processes.append(run)
        follow(run, out / "server", spec["config"]["rounds"], progress)
    finally:
        stop_processes(processes)
    if (out / "server" / RESULT).exists() and (out / "server" / CONFIG).exists():
        return json.loads((out / "server" / RESULT).read_text())
    if error.exists():
        raise UserError(json.loads(error.read_text())["error"])
    raise UserError(
        f"the Flower run ended without a result: {_last_line((work / 'run.log').read_text())} "
        f"(logs in {work})"
    )
