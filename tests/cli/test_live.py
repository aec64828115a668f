"""The live view reads a run's folder as it fills: RSS, the lines that grew (real tracemalloc snapshots) and the
types whose count grew; it draws them as a panel or, off a terminal, as lines."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from pathlib import Path

from rich.console import Console

from leakbench.cli.live import LiveView, RunReader, sparkline
from leakbench.launcher import LiveRun

KEPT: list[bytes] = []


def _fill(folder: Path) -> int:
    raw = folder / "raw" / "123"
    raw.mkdir(parents=True)
    (folder / "channel").mkdir()
    (folder / "rss.jsonl").write_text("".join(json.dumps([i * 0.1, 123, (50 + i) << 20, 0]) + "\n" for i in range(30)))
    tracemalloc.start(5)
    try:
        tracemalloc.take_snapshot().dump(str(raw / "snapshot-0000.tracemalloc"))
        for _ in range(200):
            KEPT.append(bytes(4096))  # the growing line
        line = _fill.__code__.co_firstlineno + 9
        tracemalloc.take_snapshot().dump(str(raw / "snapshot-0001.tracemalloc"))
    finally:
        tracemalloc.stop()
    for index, lists in enumerate((10, 5000)):
        counts = {"types": {"list": [lists, lists * 56], "dict": [7, 700]}}
        (raw / f"backrefs-counts-{index:04d}.json").write_text(json.dumps(counts))
    return line


def test_the_view_shows_what_grew(tmp_path: Path) -> None:
    line = _fill(tmp_path)
    reader = RunReader(tmp_path)
    reader.refresh()
    until = time.time() + 20
    while not reader.reading.lines and time.time() < until:
        time.sleep(0.1)
    reading = reader.refresh()
    assert reading.rss[123][0] == 50 << 20 and len(reading.rss[123]) == 30
    assert (f"test_live.py:{line}") in [where for where, _grew, _size in reading.lines], reading.lines
    assert reading.types[0][:2] == ("list", 4990)
    out = io.StringIO()
    view = LiveView(Console(file=out, width=100), duration=60, screen=False, keys=False)
    view.watch("tracemalloc", LiveRun(tmp_path, time.time() - 12))
    text = out.getvalue()
    assert "12 s, 48 s left" in text, text
    assert "RSS 123: 50.0 MiB -> 79.0 MiB" in text, text
    assert "type list: +4,990 objects" in text, text


def test_a_sparkline_keeps_its_peaks() -> None:
    assert sparkline([1, 2, 3, 4]) == "▁▃▅█"
    squeezed = sparkline([0] * 100 + [10] + [0] * 100, width=20)
    assert len(squeezed) == 20 and "█" in squeezed
