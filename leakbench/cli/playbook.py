"""`leakbench playbook list|show|run|resume`: the investigation sequences, and guided runs of them."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leakbench.cli.investigate import run_investigation
from leakbench.cli.ui import Guide, StageProgress, console, print_summary
from leakbench.investigation import resume
from leakbench.playbook import builtin_names, load

stdout = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Playbooks: the stage sequences an investigation follows.")
    group.command("list")(list_command)
    group.command("show")(show_command)
    group.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(
        run_command
    )
    group.command("resume")(resume_command)
    app.add_typer(group, name="playbook")


def list_command() -> None:
    """The built-in playbooks."""
    table = Table("playbook", "stages", "what it is for")
    for name in builtin_names():
        book = load(name)
        table.add_row(name, " → ".join(s.kind for s in book.stages), book.description)
    stdout.print(table)


def show_command(name: Annotated[str, typer.Argument(help="A built-in playbook's name or a TOML file.")]) -> None:
    """A playbook's stages and parameters, validated."""
    book = load(name)
    stdout.print(f"[bold]{escape(book.name)}[/] ({escape(book.source)}): {escape(book.description)}")
    for key in ("duration", "memory_limit", "load"):
        value = getattr(book, key)
        if value is not None:
            stdout.print(f"  {key} = {escape(repr(value))}")
    for index, spec in enumerate(book.stages):
        params = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(spec.params).items())
        stdout.print(f"  stages[{index}] [bold]{spec.kind}[/]  {escape(params)}")


def run_command(
    name: Annotated[str, typer.Argument(help="A built-in playbook's name or a TOML file.")],
    target: Annotated[str, typer.Argument(help="The script to run (or the module, with -m).")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the target.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory.")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Stop the target after this long.")] = None,
    memory_limit: Annotated[str | None, typer.Option("--memory-limit", help="e.g. 1GB.")] = None,
    module: Annotated[bool, typer.Option("-m", help="TARGET is a module name.")] = False,
    python: Annotated[str | None, typer.Option("--python", help="The target's interpreter.")] = None,
    load_command: Annotated[str | None, typer.Option("--load", help="A command run beside the target.")] = None,
    step: Annotated[bool, typer.Option("--step", help="Pause after each stage.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never prompt.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show leakbench's own tracebacks.")] = False,
) -> None:
    """Run playbook NAME against TARGET (like `investigate --playbook NAME`)."""
    run_investigation(
        target, args or [], out=out, playbook=name, duration=duration, memory_limit=memory_limit,
        module=module, python=python, load=load_command, step=step, yes=yes, debug=debug,
    )  # fmt: skip


def resume_command(
    run_dir: Annotated[Path, typer.Argument(help="The run directory of a stopped investigation.")],
    step: Annotated[bool, typer.Option("--step", help="Keep pausing after each stage.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never prompt.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show leakbench's own tracebacks.")] = False,
) -> None:
    """Continue an investigation where it stopped, then write its report."""
    stepper = Guide(console).ask if step and not yes and sys.stdin.isatty() else None
    with StageProgress() as progress:
        outcome = resume(run_dir, progress.callbacks(), stepper)
    print_summary(outcome.evidence, outcome.run_dir, console)
