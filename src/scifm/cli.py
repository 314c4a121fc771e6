"""The `scifm` command line: thin wrappers that parse, call library functions and print.

User errors (bad values, missing files, existing outputs) print one line on stderr and exit
with status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="scifm",
    help="Scientific foundation models: exact PDE data, neural operators, transfer studies, "
    "high-dimensional PINNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


# ---------------------------------------------------------------------------------------------
# Commands are added below, each in its own section.
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="scifm", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("scifm: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # usage errors: unknown command, bad option value
        print(f"scifm: error: {e.format_message()}", file=sys.stderr)
        return 2
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, OSError) as e:
        print(f"scifm: error: {e}", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
