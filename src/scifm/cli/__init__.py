"""The `scifm` command line: thin wrappers that parse, call library functions and print.

One module per command group (`data`, `train`, `study`, `pinn`, `federated`, `dft`, `portfolio`,
`bench`); this module
assembles them into one app, in the order `scifm --help` lists them. Command modules import
only Typer at the top; heavy libraries are imported inside the commands, so `--help` is fast.

User errors (bad values, missing files, existing outputs) print one line on stderr and exit
with status 2; nothing half-written is left behind.

``SCIFM_COMPILATION_CACHE=on`` keeps XLA's compiled programs in JAX's persistent compilation
cache, so that a command run again (or a sweep's next process) starts without recompiling:
see :func:`use_compilation_cache`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from scifm import DivergenceError, RunConflict, UserError, __version__
from scifm._checks import OutputExists
from scifm.cli import bench, data, dft, federated, pinn, portfolio, study, train

app = typer.Typer(
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" must not be eaten as markup
    name="scifm",
    help="Scientific foundation models: exact PDE data, neural operators, transfer studies, "
    "high-dimensional PINNs, plane-wave DFT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"scifm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    pass


for command in (
    data.generate,
    data.inspect,
    train.models,
    train.train,
    train.evaluate,
    study.sweep,
    study.demo,
    pinn.pinn,
):
    app.command()(command)
app.add_typer(federated.app, name="federated")
app.add_typer(dft.app, name="dft")
app.add_typer(portfolio.app, name="portfolio")
app.add_typer(bench.app, name="bench")


# usage errors (unknown command, bad option value): Typer's own exception where Typer carries
# its own Click (newer releases), Click's where it uses Click's (the ``flower`` extra's Flower
# pins Typer below 0.21)
try:
    _USAGE_ERRORS: tuple[type[Exception], ...] = (typer.TyperException,)
except AttributeError:
    import click

    _USAGE_ERRORS = (click.ClickException,)

_INTERRUPTED = "scifm: interrupted; what was saved is kept, and the same command resumes it"


CACHE_LIMIT_BYTES = 2**30  # least recently used programs are dropped beyond this
CACHE_MIN_COMPILE_S = 0.3  # programs that compile faster are not worth a file


def use_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache for this process and the ones it starts,
    where ``SCIFM_COMPILATION_CACHE`` asks for it.

    ``SCIFM_COMPILATION_CACHE=on`` keeps it in ``$XDG_CACHE_HOME/scifm/jax`` (default
    ``~/.cache/scifm/jax``), ``=FOLDER`` in that folder; capped at 1 GiB (least recently used
    programs go first). Unset or ``off``: no cache, unless JAX's own
    ``JAX_COMPILATION_CACHE_DIR`` chose one (kept as it is). Off by default: with it on, every
    compilation first hashes its program for the cache key, which a cold run pays (a cold
    ``scifm demo`` took 232 s against 212 s without, one pair of runs), while a rerun of the
    same command skips its compilations (~4 s of a 26 s d = 1000 ``scifm pinn``). A cached
    program is the one XLA compiled for the same computation, JAX, XLA flags and device, so
    results do not change; a folder that cannot be written only costs the saving. Returns the
    folder, or None.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    chosen = os.environ.get("SCIFM_COMPILATION_CACHE", "")
    if chosen.lower() in ("", "off", "0", "false", "no"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    default = chosen.lower() in ("on", "1", "true", "yes")
    folder = str(Path(base) / "scifm" / "jax") if default else chosen
    settings = {
        "jax_compilation_cache_dir": folder,
        "jax_compilation_cache_max_size": CACHE_LIMIT_BYTES,
        "jax_persistent_cache_min_compile_time_secs": CACHE_MIN_COMPILE_S,
    }
    for name, value in settings.items():  # read by JAX when imported, here and in children
        os.environ[name.upper()] = str(value)
    if "jax" in sys.modules:  # imported already (a library user calling main())
        import jax

        if jax.config.jax_compilation_cache_dir is None:
            for name, value in settings.items():
                jax.config.update(name, value)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line on stderr and exit status 2."""
    use_compilation_cache()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="scifm", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("scifm: aborted", file=sys.stderr)
        return 130
    except _USAGE_ERRORS as e:
        print(f"scifm: error: {e.format_message()}", file=sys.stderr)
        return 2
    except OutputExists as e:  # the library says overwrite=True; the CLI names its flag
        print(f"scifm: error: {e.path} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    except RunConflict as e:  # the library names the directory; the CLI names the flag
        print(f"scifm: error: {e}; choose another --out", file=sys.stderr)
        return 2
    except (UserError, DivergenceError, OSError) as e:  # anything else is a bug: traceback
        print(f"scifm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        return 130
    if rv == 130:  # Typer returns Ctrl-C as exit status 130 (no command returns a number)
        print(_INTERRUPTED, file=sys.stderr)
    return rv if isinstance(rv, int) else 0
