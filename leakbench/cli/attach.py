"""`leakbench attach PID`: investigate a Python process that is already running, and leave it running."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from leakbench.attach import inspect
from leakbench.cli.live import LiveView
from leakbench.cli.ui import StageProgress, console, print_summary
from leakbench.errors import UsageError
from leakbench.investigation import investigate, new_run_dir, prepare_run_dir
from leakbench.playbook import load as load_playbook
from leakbench.playbook import parse as parse_playbook
from leakbench.stages.base import RunOptions
from leakbench.target import TargetSpec

DEFAULT_DURATION_S = 60.0


def register(app: typer.Typer) -> None:
    app.command("attach")(attach_command)


def attach_command(
    pid: Annotated[int, typer.Argument(help="The process ID of a running Python program.")],
    duration: Annotated[
        float | None, typer.Option("--duration", help="How long to watch it, in seconds (default: 60).")
    ] = None,
    playbook: Annotated[str, typer.Option("--playbook", help="Built-in playbook name or a TOML file.")] = "service",
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: a new one in ./leakbench-runs/).")
    ] = None,
    load: Annotated[
        str | None, typer.Option("--load", help="A command run while attached, e.g. one sending it requests.")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Show RSS, growing lines and types while attached (q stops early).")
    ] = False,
    native: Annotated[
        bool, typer.Option("--native", help="Ask for the native tracker too (the report says why it cannot run).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Attach to a running Python process, watch it for --duration seconds, then detach and write the report.

    The process keeps running: leakbench's agent starts inside it (through gdb on Python 3.11 to 3.13, through
    sys.remote_exec on 3.14 and later), traces what it allocates from then on, and removes itself at the end.
    """
    book = load_playbook(playbook)
    if native and not any(s.kind == "native" for s in book.stages):
        # the native tracker is preloaded when a program starts: in a running process the stage is reported
        # as skipped, with the reason and what to run instead
        book = parse_playbook(book.text + '\n[[stages]]\nkind = "native"\n', book.source)
    seconds = duration if duration is not None else (book.duration or DEFAULT_DURATION_S)
    if seconds <= 0:
        raise UsageError(f"--duration {seconds:g}: must be a positive number of seconds")
    process = inspect(pid)
    spec = _target_of(process.argv, process.executable, process.cwd)
    run_dir = prepare_run_dir(out or new_run_dir(Path("leakbench-runs"), spec))
    options = RunOptions(duration=seconds, debug=debug, load=load or book.load, attach_pid=pid)
    console.print(
        f"attaching to PID {pid} (Python {process.version[0]}.{process.version[1]}: {' '.join(process.argv)[:100]}) "
        f"for {seconds:g} s",
        highlight=False,
    )
    # The process's output goes wherever it went before: the terminal is leakbench's alone
    view = LiveView(console, duration=seconds, screen=True, keys=True) if live else None
    with StageProgress() as progress, view or contextlib.nullcontext():
        callbacks = progress.callbacks(view)
        outcome = investigate(spec, book, run_dir, options, callbacks)
    print_summary(outcome.evidence, outcome.run_dir, console)


def _target_of(argv: tuple[str, ...], executable: str, cwd: str) -> TargetSpec:
    """The command line of the running process, as a target (for the report: nothing is started)."""
    rest = list(argv[1:])
    while rest and rest[0].startswith("-") and rest[0] != "-m":
        rest.pop(0)  # interpreter options (-u, -X dev, ...)
    if len(rest) >= 2 and rest[0] == "-m":
        return TargetSpec(executable, tuple(rest[2:]), module=rest[1], cwd=cwd)
    if rest:
        script = rest[0] if rest[0].startswith("/") else str(Path(cwd) / rest[0])
        return TargetSpec(executable, tuple(rest[1:]), script=script, cwd=cwd)
    return TargetSpec(executable, (), script=executable, cwd=cwd)
