"""`leakbench report RUN_DIR`: render report.md and report.html again from a run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from leakbench.cli.ui import console, print_summary
from leakbench.errors import RunDirError
from leakbench.report.evidence import render_reports


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `leakbench investigate`.")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of leakbench's own errors.")] = False,
) -> None:
    """Re-render the report of RUN_DIR from its evidence and stage findings."""
    evidence_path = run_dir / "evidence.json"
    if not evidence_path.is_file():
        raise RunDirError(f"{run_dir}: not a leakbench run directory (no evidence.json)")
    try:
        evidence = json.loads(evidence_path.read_text())
    except ValueError as exc:
        raise RunDirError(f"{evidence_path}: not valid JSON ({exc})") from None
    if evidence.get("schema") != "leakbench.evidence/1":
        raise RunDirError(f"{evidence_path}: unknown schema {evidence.get('schema')!r}")
    render_reports(run_dir, evidence)
    print_summary(evidence, run_dir, console)
