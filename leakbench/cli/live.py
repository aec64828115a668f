"""`--live`: what the target's memory does while it runs, refreshed about once a second.

On a terminal that only leakbench writes to (`attach`, or `investigate` with the target's stdout and stderr
sent elsewhere) it is a panel redrawn in place: RSS over time as a sparkline, the lines whose memory grew most
since the start (from tracemalloc's latest snapshot), the types whose count grew most, and the time elapsed and
left. Keys (when stdin is a terminal leakbench may read): `q` stops the run, which then writes the report;
`s` sorts the lines by growth or by size. Elsewhere (not a terminal, or the target writing to the same
terminal) it prints the same in a few lines every LINES_EVERY_S seconds.

Everything is read from the run's folder, as the report is: leakbench's own process does the work, never
the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import termios
import threading
import time
import tracemalloc
import tty
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from leakbench.launcher import AGENT_DIR, LiveRun
from leakbench.units import human_bytes

SPARK = "▁▂▃▄▅▆▇█"
REFRESH_S = 1.0
SNAPSHOT_EVERY_S = 3.0
LINES_EVERY_S = 5.0
TOP = 6


def sparkline(values: list[int], width: int = 60) -> str:
    if not values:
        return ""
    if len(values) > width:  # the largest of each bucket: a peak stays visible
        step = len(values) / width
        values = [max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1)))] for v in values)


@dataclass
class Reading:
    """What the view shows, read from the run's folder."""

    rss: dict[int, list[int]] = field(default_factory=dict)  # pid -> RSS samples
    lines: list[tuple[str, int, int]] = field(default_factory=list)  # (file:line, growth, size)
    types: list[tuple[str, int, int]] = field(default_factory=list)  # (type, count growth, bytes growth)
    snapshot_at: float = 0.0


class RunReader:
    """Reads a running target's folder incrementally; the snapshot comparison runs in a thread of its own
    (a big heap's snapshot takes seconds to load)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.reading = Reading()
        self._rss_offset = 0
        self._busy = threading.Lock()
        self._last_snapshot = 0.0

    def refresh(self) -> Reading:
        self._read_rss()
        self._read_counts()
        if time.time() - self._last_snapshot >= SNAPSHOT_EVERY_S and not self._busy.locked():
            self._last_snapshot = time.time()
            threading.Thread(target=self._compare_snapshots, name="leakbench-live", daemon=True).start()
        return self.reading

    def _read_rss(self) -> None:
        path = self.folder / "rss.jsonl"
        with contextlib.suppress(OSError), path.open("rb") as handle:
            handle.seek(self._rss_offset)
            chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            self._rss_offset += end
            for line in chunk[:end].splitlines():
                with contextlib.suppress(ValueError):
                    _t, pid, rss, _vms = json.loads(line)
                    self.reading.rss.setdefault(int(pid), []).append(int(rss))

    def _read_counts(self) -> None:
        raw = self.folder / "raw"
        files = sorted(raw.glob("*/backrefs-counts-*.json"))
        if len(files) < 2:
            return
        first, last = _counts(files[0]), _counts(files[-1])
        grown = [
            (name, c - first.get(name, (0, 0))[0], b - first.get(name, (0, 0))[1]) for name, (c, b) in last.items()
        ]
        self.reading.types = sorted(grown, key=lambda g: g[2], reverse=True)[:TOP]

    def _compare_snapshots(self) -> None:
        with self._busy:
            snaps = sorted((self.folder / "raw").glob("*/snapshot-*.tracemalloc"))
            if len(snaps) < 2:
                return
            try:
                first = tracemalloc.Snapshot.load(str(snaps[0]))
                last = tracemalloc.Snapshot.load(str(snaps[-1]))
            except Exception:  # a snapshot still being written: the next refresh reads it
                return
            own = tracemalloc.Filter(False, str(AGENT_DIR) + os.sep + "*", all_frames=True)
            stats = last.filter_traces([own]).compare_to(first.filter_traces([own]), "lineno")
            self.reading.lines = [
                (f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}", s.size_diff, s.size)
                for s in stats
                if s.size_diff > 0
            ][: TOP * 3]
            self.reading.snapshot_at = time.time()


def _counts(path: Path) -> dict[str, tuple[int, int]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): (int(v[0]), int(v[1])) for k, v in data.get("types", {}).items()}


class LiveView:
    """The live view of one investigation: fed by the progress callbacks, read by the stop policy."""

    def __init__(self, console: Console, *, duration: float | None, screen: bool, keys: bool) -> None:
        self.console = console
        self.duration = duration
        self.screen = screen and console.is_terminal
        self.keys = keys and self.screen and sys.stdin.isatty()
        self.by_size = False
        self.stop_reason: str | None = None
        self._reader: RunReader | None = None
        self._label = ""
        self._started = 0.0
        self._shown = 0.0
        self._live: Live | None = None
        self._keys: threading.Thread | None = None
        self._halt = threading.Event()

    def __enter__(self) -> LiveView:
        if self.screen:
            self._live = Live(Text("leakbench: starting"), console=self.console, refresh_per_second=2, transient=True)
            self._live.start()
        if self.keys:
            self._keys = threading.Thread(target=self._read_keys, name="leakbench-keys", daemon=True)
            self._keys.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._halt.set()
        if self._live is not None:
            self._live.stop()
        if self._keys is not None:
            self._keys.join(timeout=1)

    def watch(self, label: str, live: LiveRun) -> None:
        if self._reader is None or self._reader.folder != live.folder:
            self._reader, self._label, self._started = RunReader(live.folder), label, live.started_at
        now = time.time()
        every = REFRESH_S if self._live is not None else LINES_EVERY_S
        if now - self._shown < every:
            return
        self._shown = now
        reading = self._reader.refresh()
        if self._live is not None:
            self._live.update(self.render(reading, now - self._started))
        else:
            for line in self.lines(reading, now - self._started):
                self.console.print(line, highlight=False, markup=False)

    def stop_requested(self) -> str | None:
        return self.stop_reason

    # -- what is shown ------------------------------------------------------------------------------
    def _clock(self, elapsed: float) -> str:
        left = f", {max(0.0, self.duration - elapsed):.0f} s left" if self.duration else ""
        return f"{self._label}: {elapsed:.0f} s{left}"

    def _ranked_lines(self, reading: Reading) -> list[tuple[str, int, int]]:
        key = (lambda r: r[2]) if self.by_size else (lambda r: r[1])
        return sorted(reading.lines, key=key, reverse=True)[:TOP]

    def render(self, reading: Reading, elapsed: float) -> Group:
        parts: list[Any] = [Text(f"leakbench --live  {self._clock(elapsed)}", style="bold")]
        for pid, values in sorted(reading.rss.items()):
            parts.append(Text(f"RSS {pid}: {human_bytes(values[0])} → {human_bytes(values[-1])}  {sparkline(values)}"))
        lines = Table(title=f"lines whose memory grew most (by {'size' if self.by_size else 'growth'})", expand=False)
        lines.add_column("line")
        lines.add_column("grew", justify="right")
        lines.add_column("holds", justify="right")
        for where, grew, size in self._ranked_lines(reading):
            lines.add_row(where, "+" + human_bytes(grew), human_bytes(size))
        if not reading.lines:
            lines.add_row("(waiting for tracemalloc's snapshots)", "", "")
        parts.append(lines)
        if reading.types:
            types = Table(title="types whose count grew", expand=False)
            types.add_column("type")
            types.add_column("objects", justify="right")
            types.add_column("bytes", justify="right")
            for name, count, size in reading.types:
                types.add_row(name, f"+{count:,}", "+" + human_bytes(size))
            parts.append(types)
        if self.keys:
            parts.append(Text("q: stop and write the report   s: sort the lines by growth or size", style="dim"))
        return Group(*parts)

    def lines(self, reading: Reading, elapsed: float) -> list[str]:
        out = [f"leakbench live: {self._clock(elapsed)}"]
        for pid, values in sorted(reading.rss.items()):
            out.append(f"  RSS {pid}: {human_bytes(values[0])} -> {human_bytes(values[-1])}  {sparkline(values, 30)}")
        for where, grew, size in self._ranked_lines(reading)[:3]:
            out.append(f"  line {where}: +{human_bytes(grew)} (holds {human_bytes(size)})")
        for name, count, size in reading.types[:3]:
            out.append(f"  type {name}: +{count:,} objects (+{human_bytes(size)})")
        return out

    # -- keys ---------------------------------------------------------------------------------------
    def _read_keys(self) -> None:
        fd = sys.stdin.fileno()
        try:
            saved = termios.tcgetattr(fd)
        except termios.error:
            return
        try:
            tty.setcbreak(fd)
            while not self._halt.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                key = os.read(fd, 1).decode(errors="ignore").lower()
                if key == "q":
                    self.stop_reason = "user"
                elif key == "s":
                    self.by_size = not self.by_size
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
