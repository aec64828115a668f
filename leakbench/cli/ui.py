"""What the terminal shows: a progress line per stage with the elapsed time, and the closing summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.status import Status

from leakbench.analysis.model import StageReport
from leakbench.investigation import Decision, Pause, Progress

console = Console(stderr=True)

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red"}
VERDICT_STYLE = {
    "leak": "bold red",
    "oom": "bold red",
    "no-leak": "bold green",
    "inconclusive": "bold yellow",
}
PLAIN_EVERY_S = 15.0


class StageProgress:
    """A live status line on a terminal; plain lines every few seconds when stderr is not one."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self.live = self.console.is_terminal
        self._status: Status | None = None
        self._label = ""
        self._last_plain = 0.0

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._status:
            self._status.stop()
            self._status = None

    def started(self, name: str, what: str) -> None:
        self._stop()
        self._label = f"stage [bold]{escape(name)}[/]: {escape(what)}"
        self._last_plain = time.monotonic()
        if self.live:
            self._status = self.console.status(self._label)
            self._status.start()
        else:
            self.console.print(f"leakbench: {self._label}", highlight=False)

    def tick(self, name: str, elapsed: float) -> None:
        if self._status:
            self._status.update(f"{self._label} — {elapsed:.0f} s")
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self.console.print(f"leakbench: stage {escape(name)} still running, {elapsed:.0f} s", highlight=False)

    def done(self, report: StageReport) -> None:
        self._stop()
        style = STATUS_STYLE.get(report.status, "")
        self.console.print(
            f"  [{style}]{report.status}[/] {escape(report.name)}: {escape(report.message)}", highlight=False
        )

    def log(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def callbacks(self) -> Progress:
        return Progress(stage_started=self.started, tick=self.tick, stage_done=self.done, log=self.log)


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
