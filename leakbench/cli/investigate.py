"""`leakbench investigate TARGET [ARGS]...`: run a playbook against a program and write the report."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from leakbench.cli.live import LiveView
from leakbench.cli.ui import Guide, StageProgress, console, print_summary
from leakbench.errors import UsageError
from leakbench.investigation import investigate, new_run_dir, prepare_run_dir
from leakbench.playbook import load as load_playbook
from leakbench.stages.base import RunOptions
from leakbench.target import make_target


def register(app: typer.Typer) -> None:
    app.command(
        "investigate",
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(investigate_command)


def investigate_command(
    target: Annotated[str, typer.Argument(help="The script to run (or the module, with -m).")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the target.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: a new one in ./leakbench-runs/).")
    ] = None,
    playbook: Annotated[str, typer.Option("--playbook", help="Built-in playbook name or a TOML file.")] = "full",
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop a long-running target after this many seconds.")
    ] = None,
    memory_limit: Annotated[
        str | None, typer.Option("--memory-limit", help="Address-space limit for the target, e.g. 1GB.")
    ] = None,
    module: Annotated[bool, typer.Option("-m", help="TARGET is a module name, as with python -m.")] = False,
    python: Annotated[str | None, typer.Option("--python", help="The interpreter of the target's environment.")] = None,
    load: Annotated[
        str | None, typer.Option("--load", help="A command run beside the target, e.g. one sending it requests.")
    ] = None,
    step: Annotated[
        bool, typer.Option("--step", help="Pause after each stage: continue, skip, rerun or quit.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never prompt (also when stdin is not a terminal).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
    function: Annotated[
        str | None,
        typer.Option("--function", help="Function to profile line by line: module:qualname or path.py:function."),
    ] = None,
    repro: Annotated[
        str | None, typer.Option("--repro", help='A smaller run for the line profile, e.g. "app.py --articles 50".')
    ] = None,
    repro_calls: Annotated[
        int | None,
        typer.Option("--repro-calls", min=1, help="Stop the line-profile run after this many calls (default 50)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Show RSS, growing lines and types while the target runs (q stops it).")
    ] = False,
) -> None:
    """Run the investigation playbook against TARGET and write report.md, report.html and evidence.json."""
    run_investigation(
        target, args or [], out=out, playbook=playbook, duration=duration, memory_limit=memory_limit,
        module=module, python=python, load=load, step=step, yes=yes, debug=debug,
        function=function, repro=repro, repro_calls=repro_calls, live=live,
    )  # fmt: skip


def run_investigation(
    target: str,
    args: list[str],
    *,
    out: Path | None,
    playbook: str,
    duration: float | None,
    memory_limit: str | None,
    module: bool,
    python: str | None,
    load: str | None,
    step: bool,
    yes: bool,
    debug: bool,
    function: str | None = None,
    repro: str | None = None,
    repro_calls: int | None = None,
    live: bool = False,
) -> None:
    """Shared by `investigate` and `playbook run`: check the input, run, print the summary."""
    book = load_playbook(playbook)
    limit = memory_limit or book.memory_limit
    spec = make_target(target, args, module=module, python=python, memory_limit=limit)
    duration = duration if duration is not None else book.duration
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration {duration:g}: must be a positive number of seconds")
    run_dir = prepare_run_dir(out or new_run_dir(Path("leakbench-runs"), spec))
    options = RunOptions(
        duration=duration, debug=debug, load=load or book.load, function=function, repro=repro, repro_calls=repro_calls
    )
    stepper = Guide(console).ask if step and not yes and sys.stdin.isatty() else None
    # The target writes to the terminal too: the view is redrawn in place only when its output goes
    # elsewhere; keys are read only when its stdin is not the terminal (it is the target's otherwise).
    shared = sys.stdout.isatty() or sys.stderr.isatty()
    view = LiveView(console, duration=duration, screen=not shared, keys=not sys.stdin.isatty()) if live else None
    with StageProgress() as progress, view or contextlib.nullcontext():
        callbacks = progress.callbacks(view)
        outcome = investigate(spec, book, run_dir, options, callbacks, stepper)
    print_summary(outcome.evidence, outcome.run_dir, console)
