"""`leakbench backrefs --type TYPE TARGET [ARGS]...`: what keeps the objects of one type alive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from leakbench.cli.ui import StageProgress
from leakbench.errors import UsageError
from leakbench.investigation import investigate, new_run_dir, prepare_run_dir
from leakbench.playbook import Playbook, StageSpec
from leakbench.stages.backrefs import BackrefsParams
from leakbench.stages.base import RunOptions
from leakbench.stages.rss import RssParams
from leakbench.target import make_target
from leakbench.units import human_bytes

stdout = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(
        "backrefs",
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(backrefs_command)


def backrefs_command(
    target: Annotated[str, typer.Argument(help="The script to run (or the module, with -m).")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the target.")] = None,
    type_: Annotated[
        str, typer.Option("--type", help="The type to follow: a builtin (`list`) or qualified (`mymod.MyClass`).")
    ] = "",
    at: Annotated[
        float | None,
        typer.Option("--at", help="Take the chains this many seconds after start (then stop), not at the end."),
    ] = None,
    max_depth: Annotated[int, typer.Option("--max-depth", help="References followed up towards a root.")] = 12,
    samples: Annotated[int, typer.Option("--samples", help="Objects of the type sampled.")] = 5,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between counts of the objects.")] = 1.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: a new one in ./leakbench-runs/).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop a long-running target after this many seconds.")
    ] = None,
    module: Annotated[bool, typer.Option("-m", help="TARGET is a module name, as with python -m.")] = False,
    python: Annotated[str | None, typer.Option("--python", help="The interpreter of the target's environment.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Run TARGET, print the reference chains from a root to objects of TYPE, and write their graph."""
    if not type_.strip():
        raise UsageError("--type is required: the type to follow, e.g. --type list or --type mymod.MyClass")
    for name, value in (("--at", at), ("--duration", duration)):
        if value is not None and value <= 0:
            raise UsageError(f"{name} {value:g}: must be a positive number of seconds")
    if max_depth < 1 or samples < 1 or interval <= 0:
        raise UsageError("--max-depth, --samples and --interval must be positive")
    spec = make_target(target, args or [], module=module, python=python)
    params = BackrefsParams(
        interval=interval, max_depth=max_depth, types=(type_.strip(),), samples=samples, min_growth=10, at=at
    )
    book = Playbook(
        name="backrefs",
        description=f"what keeps {type_} objects alive",
        stages=(StageSpec("rss", RssParams()), StageSpec("backrefs", params)),
        source="leakbench backrefs",
    )
    run_dir = prepare_run_dir(out or new_run_dir(Path("leakbench-runs"), spec))
    with StageProgress() as progress:
        outcome = investigate(spec, book, run_dir, RunOptions(duration=duration, debug=debug), progress.callbacks())
    report = outcome.reports.get("backrefs")
    data: dict[str, Any] = report.data if report else {}
    if data.get("unknown_types"):
        growing = [f"{g['type']} (+{g['count_growth']})" for g in data.get("growing", [])[:10]]
        raise UsageError(
            f"--type {type_}: no object of that type existed in the target",
            hint=("types that grew: " + ", ".join(growing)) if growing else "no type grew during the run",
        )
    print_chains(data, run_dir, type_)


def print_chains(data: dict[str, Any], run_dir: Path, type_: str, out: Console = stdout) -> None:
    chains = data.get("chains", [])
    if not chains:
        out.print(escape(data.get("not_grown") or f"no {type_} made during the run was alive at a checkpoint"))
    for ch in chains:
        if ch.get("growth") == "size":
            grew = f"grew by ~{human_bytes(ch['bytes_growth'])} in size"
        elif ch.get("growth") == "container" and ch["type"] in ("list", "dict", "set"):
            grew = f"one {ch['type']} got longer by {ch['count_growth']} entries (~{human_bytes(ch['bytes_growth'])})"
        else:
            grew = f"+{ch['count_growth']} objects"
        out.print(
            f"[bold]{escape(ch['type'])}[/] in pid {ch['pid']} ({ch['role']}): {grew}, "
            f"taken {ch['taken_at']:g} s into the run"
        )
        out.print(f"  kept alive by [bold]{escape(ch['root'])}[/]")
        out.print("  " + escape("\n    → ".join(ch["chain"])))
        out.print(f"  pattern: {escape(ch['pattern'])}; usual fix: {escape(ch['fix'])}")
        if ch.get("graph"):
            out.print(f"  graph: {escape(str(run_dir / ch['graph']))}")
        elif ch.get("graph_problem"):
            out.print(f"  no graph image: {escape(ch['graph_problem'])}")
    out.print(f"report: {escape(str(run_dir / 'report.md'))}")
