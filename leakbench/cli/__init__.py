"""The command line: one module per subcommand, each parsing options and calling the library.

Errors become exit codes here and nowhere else: a LeakbenchError is one line on stderr and exit code 2;
a traceback only with --debug.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from leakbench.errors import LeakbenchError

app = typer.Typer(
    name="leakbench",
    help="Investigate a Python program's memory growth and write one incident report.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True)


def _register() -> None:
    from leakbench.cli import attach, backrefs, investigate, lineprofile, native, playbook, report

    investigate.register(app)
    attach.register(app)
    report.register(app)
    backrefs.register(app)
    native.register(app)
    playbook.register(app)
    lineprofile.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `leakbench` script."""
    _register()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="leakbench", standalone_mode=False)
    except LeakbenchError as exc:
        if debug:
            err_console.print_exception()
        err_console.print("[bold red]leakbench:[/] " + escape(exc.message), highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print("  " + escape(exc.hint), highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("leakbench: aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("leakbench: interrupted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer prints them the usual way
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print("leakbench: " + escape(exc.message), highlight=False)
        return exc.exit_code
    return 0


def run() -> None:
    sys.exit(main())
