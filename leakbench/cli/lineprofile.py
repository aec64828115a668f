"""`leakbench lineprofile TARGET --function NAME [ARGS]...`: memory_profiler's table for one function."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leakbench.analysis.model import StageReport
from leakbench.target import make_target
from leakbench.units import human_bytes

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    # Options may follow the script (as in the usage line); unknown ones are the target's, and `--` ends ours.
    app.command(
        "lineprofile",
        context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True},
    )(lineprofile_command)


def lineprofile_command(
    target: Annotated[str, typer.Argument(help="The script to run (or the module, with -m).")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the target.")] = None,
    function: Annotated[
        str, typer.Option("--function", help="module:qualname, path.py:function, or a function of the script.")
    ] = "",
    repro_calls: Annotated[
        int, typer.Option("--repro-calls", min=1, help="Stop after the function completed this many calls.")
    ] = 50,
    budget: Annotated[float, typer.Option("--budget", min=1, help="Stop after this many seconds at most.")] = 60.0,
    backend: Annotated[
        str, typer.Option("--backend", help="tracemalloc (exact Python heap) or psutil (RSS, sees native memory).")
    ] = "tracemalloc",
    out: Annotated[Path | None, typer.Option("--out", help="Keep the run's files here (default: not kept).")] = None,
    module: Annotated[bool, typer.Option("-m", help="TARGET is a module name, as with python -m.")] = False,
    python: Annotated[str | None, typer.Option("--python", help="The interpreter of the target's environment.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Run TARGET with memory_profiler's line profiler on one function, stop after N calls, print the table."""
    from leakbench.errors import LeakbenchError, UsageError
    from leakbench.stages.line_profile import line_profile

    if not function:
        raise UsageError(
            "--function is required: the function to profile",
            hint="e.g. --function main, --function data_pipeline:normalize_vectors or --function app.py:Cache.put",
        )
    spec = make_target(target, args or [], module=module, python=python)
    folder = out.resolve() if out else Path(tempfile.mkdtemp(prefix="leakbench-lineprofile-"))
    try:
        report = line_profile(spec, function, folder=folder, calls=repro_calls, budget=budget, backend=backend)
    finally:
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            stderr.print(f"run files: {escape(str(folder))}")
    if report.status != "ok" or report.data.get("never_called"):
        raise LeakbenchError(report.message)
    print_report(report, stdout)


def print_report(report: StageReport, console: Console) -> None:
    """The table as memory_profiler prints it, sizes made readable, the line that added the most in red."""
    data = report.data
    profiled = data["profiled"]
    where = f"{Path(profiled['file']).name}:{profiled['line']}"
    console.print(
        f"[bold]{escape(profiled['qualname'])}[/] ({escape(where)}), memory_profiler with the "
        f"[bold]{escape(data['backend'])}[/] backend: {data['calls_completed']} completed call(s), "
        f"stopped {escape(data['repro']['stopped'])} ({data['repro']['duration_s']:.1f} s)"
    )
    if data.get("via"):
        console.print(f"{escape(data['via'])} is library code: its caller in your code was profiled instead.")
    console.print(_table(data["table"], console.width), soft_wrap=False)
    marked = data.get("marked")
    if marked:
        console.print(
            f"Line [bold red]{marked['line']}[/] added the most: +{human_bytes(marked['increment_bytes'])} "
            f"over {marked['occurrences']:,} runs."
        )
    else:
        console.print("No line of the function kept memory over these calls.")
    console.print(f"[dim]{escape(data['backend_note'])}[/]")


def _table(rows: list[Mapping[str, Any]], width: int) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name in ("Line #", "Mem usage", "Increment", "Occurrences"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    table.add_column("Line Contents", no_wrap=True)
    texts = [r["text"].rstrip() for r in rows]
    indent = min((len(x) - len(x.lstrip()) for x in texts if x.strip()), default=0)
    room = max(20, width - 46)  # rich would rather drop a column than cut a long line: cut it here
    for r, text in zip(rows, texts, strict=True):
        text = text[indent:]
        text = text if len(text) <= room else text[: room - 1] + "…"
        table.add_row(
            str(r["line"]),
            human_bytes(r["mem_bytes"]),
            ("◀ " if r["marked"] else "") + human_bytes(r["increment_bytes"]),
            f"{r['occurrences']:,}",
            escape(text),
            style="bold red" if r["marked"] else None,
        )
    return table
