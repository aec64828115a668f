"""`leakbench native run|report`: the tracker on its own, outside an investigation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from leakbench.errors import UsageError
from leakbench.target import make_target

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    native = typer.Typer(help="Run a program under the native allocation tracker, or report on a capture.")
    native.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(
        run_command
    )
    native.command("report")(report_command)
    app.add_typer(native, name="native")


def run_command(
    target: Annotated[str, typer.Argument(help="The script to run (or the module, with -m).")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the target.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Capture file; %p becomes the pid (default: ./leakbench-NAME.%p.lbt)."),
    ] = None,
    module: Annotated[bool, typer.Option("-m", help="TARGET is a module name, as with python -m.")] = False,
    python: Annotated[str | None, typer.Option("--python", help="The interpreter of the target's environment.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Run TARGET with every allocation recorded into a capture file."""
    from leakbench.native.session import run_tracked

    spec = make_target(target, args or [], module=module, python=python)
    capture = output or Path(f"leakbench-{spec.name}.%p.lbt")
    result = run_tracked(spec, capture)
    stderr.print(f"leakbench: the target {escape(result.run.exit.describe())}")
    if not result.captures:
        raise UsageError(f"no capture was written to {capture}", hint="is the tracker built? try `make setup`")
    for path in result.captures:
        stderr.print(f"capture: {escape(str(path))}   (leakbench native report {escape(str(path))})")


def report_command(
    capture: Annotated[Path, typer.Argument(help="A capture written by `leakbench native run` or an investigation.")],
    fmt: Annotated[
        str, typer.Option("--format", help="md (to stdout), html (a file beside the capture) or json.")
    ] = "md",
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here instead.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Report what a capture says: leaks by stack, the peak, failed allocations, a flame graph."""
    from leakbench.native.session import report_capture

    if fmt not in ("md", "html", "json"):
        raise UsageError(f"--format {fmt}: choose md, html or json")
    if not capture.is_file():
        raise UsageError(f"capture not found: {capture}")
    text = report_capture(capture, fmt)  # type: ignore[arg-type]
    if fmt == "html" and out is None:
        out = capture.with_suffix(capture.suffix + ".html")
    if out is not None:
        out.write_text(text)
        stderr.print(f"report: {escape(str(out))}")
    else:
        stdout.print(text, markup=False)
