"""`leakbench investigate TARGET [ARGS]...`: run a playbook against a program and write the report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from leakbench.cli.ui import StageProgress, console, print_summary
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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never prompt.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Run the investigation playbook against TARGET and write report.md, report.html and evidence.json."""
    spec = make_target(target, args or [], module=module, python=python, memory_limit=memory_limit)
    book = load_playbook(playbook)
    if duration is not None and duration <= 0:
        from leakbench.errors import UsageError

        raise UsageError(f"--duration {duration:g}: must be a positive number of seconds")
    run_dir = prepare_run_dir(out or new_run_dir(Path("leakbench-runs"), spec))
    interactive = not yes and sys.stdin.isatty()
    del interactive  # prompts arrive with guided runs
    options = RunOptions(duration=duration, debug=debug)
    with StageProgress() as progress:
        outcome = investigate(spec, book, run_dir, options, progress.callbacks())
    print_summary(outcome.evidence, outcome.run_dir, console)
