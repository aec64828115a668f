"""What the terminal shows: a progress line per stage with the elapsed time, and the closing summary."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt

from leakbench.analysis.model import StageReport
from leakbench.investigation import Decision, Pause, Progress

if TYPE_CHECKING:
    from leakbench.cli.live import LiveView

console = Console(stderr=True)

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red"}
VERDICT_STYLE = {
    "leak": "bold red",
    "oom": "bold red",
    "no-leak": "bold green",
    "inconclusive": "bold yellow",
}


class StageProgress:
    """One line when a stage starts and one when it is done, each on a line of its own.

    The target runs on the same terminal and writes to it whenever it likes, so nothing is drawn while it
    runs: no spinner, no line rewritten in place, no "still running" line that could land in the middle of
    one of the target's lines. Its stdout and stderr pass through untouched.
    """

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def started(self, name: str, what: str) -> None:
        self.console.print(f"leakbench: stage [bold]{escape(name)}[/]: {escape(what)}", highlight=False)
        sys.stderr.flush()

    def tick(self, name: str, elapsed: float) -> None:
        return None

    def done(self, report: StageReport) -> None:
        style = STATUS_STYLE.get(report.status, "")
        self.console.print(
            f"  [{style}]{report.status}[/] {escape(report.name)}: {escape(report.message)}", highlight=False
        )

    def log(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def callbacks(self, view: LiveView | None = None) -> Progress:
        """The progress callbacks, with the live view's (what it shows, when to stop) when there is one."""
        progress = Progress(stage_started=self.started, tick=self.tick, stage_done=self.done, log=self.log)
        if view is not None:
            progress.watch, progress.stop_requested = view.watch, view.stop_requested
        return progress


def print_summary(evidence: Mapping[str, Any], run_dir: Path, out: Console) -> None:
    verdict = evidence["verdict"]
    lines = [
        f"[{VERDICT_STYLE.get(verdict['kind'], 'bold')}]{verdict['kind'].upper()}[/] "
        f"(confidence {verdict['confidence']:.2f})  {escape(verdict['summary'])}"
    ]
    for s in evidence.get("suspects", [])[:3]:
        lines.append(
            f"  suspect [bold]{escape(s['file'])}:{s['line']}[/] {escape(s['function'])}"
            f"  [dim]{escape(s.get('text', ''))}[/]  ({', '.join(s['stages'])})"
        )
        if s.get("keeps"):
            lines.append(f"    stores what {escape(Path(s['keeps']).name)} allocates")
    for r in evidence.get("retention", [])[:1]:
        lines.append(f"  kept alive by {escape(r['root'])}")
    report = run_dir / "report.md"
    lines.append(f"report: [link=file://{report.resolve()}]{escape(str(report))}[/link]")
    out.print(Panel("\n".join(lines), title="leakbench", expand=False), highlight=False)
    sys.stderr.flush()


class Guide:
    """The pause between stages of a guided run: what was found, what comes next, and a choice."""

    CHOICES: ClassVar[dict[str, Decision]] = {"c": "continue", "s": "skip", "r": "rerun", "q": "quit"}

    def __init__(self, out: Console) -> None:
        self.console = out

    def ask(self, pause: Pause) -> Decision:
        lines = []
        for report in pause.done:
            style = STATUS_STYLE.get(report.status, "")
            lines.append(f"[{style}]{report.status}[/] [bold]{escape(report.name)}[/]: {escape(report.message)}")
        lines.append("")
        lines.append(f"[bold]next[/] {escape(pause.next_label)}: {escape(pause.next_summary)}")
        self.console.print(Panel("\n".join(lines), title="leakbench: stage done", expand=False), highlight=False)
        answer = Prompt.ask(
            escape("[c]ontinue, [s]kip the next stage, [r]erun this one, [q]uit (resume later)"),
            choices=list(self.CHOICES),
            default="c",
            console=self.console,
        )
        return self.CHOICES[answer]
