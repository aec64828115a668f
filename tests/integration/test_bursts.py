"""tracemalloc in bursts: for a long run it traces in windows and lets the target run at full speed between
them; the line that grows in every window is found, and the report lists the windows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import leakbench, marked_line

APP = """\
import time
HISTORY = []
def handle(i):
    HISTORY.append({"i": i, "payload": "y" * 300 + str(i)})  # expect: suspect
while True:
    for i in range(200):
        handle(i)
    time.sleep(0.02)
"""

PLAYBOOK = """\
name = "bursts"
description = "tracemalloc in short windows"

[[stages]]
kind = "rss"

[[stages]]
kind = "tracemalloc"
conclusive_after = 0
budget = 0
window = 3
every = 6
warmup = 1
"""


def test_a_long_run_is_traced_in_windows(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    book = tmp_path / "bursts.toml"
    book.write_text(PLAYBOOK)
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", str(book), "--duration", "16", "--out", str(out), str(app))
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
    assert (evidence["suspects"][0]["file"], evidence["suspects"][0]["line"]) == (str(app), marked_line(app, "suspect"))
    data = json.loads((out / "stages" / "tracemalloc.json").read_text())["data"]
    windows = data["windows"]
    assert len(windows) >= 2, windows
    assert all(w["top"][0]["line"] == marked_line(app, "suspect") for w in windows), windows
    # between the windows tracemalloc was off: the agent opened and closed each, and sampled the traced
    # heap only while one was open
    events = [json.loads(line) for p in (out / "runs" / "run-1" / "channel").glob("*.jsonl") for line in p.open()]
    states = [(e["index"], e["state"]) for e in events if e["event"] == "tracemalloc-window"]
    assert states[:4] == [(0, "open"), (0, "closed"), (1, "open"), (1, "closed")], states
    opened = {e["index"]: e["t"] for e in events if e["event"] == "tracemalloc-window" and e["state"] == "open"}
    closed = {e["index"]: e["t"] for e in events if e["event"] == "tracemalloc-window" and e["state"] == "closed"}
    heap = [e["t"] for e in events if e["event"] == "heap"]
    assert heap and all(any(opened[i] <= t <= closed.get(i, t) for i in opened) for t in heap)
    report = (out / "report.md").read_text()
    assert "tracemalloc ran in windows" in report
    assert "| 2 |" in report


def test_a_short_run_is_traced_whole(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    book = tmp_path / "bursts.toml"
    book.write_text(PLAYBOOK.replace("window = 3", "window = 30"))
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", str(book), "--duration", "5", "--out", str(out), str(app))
    assert result.code == 0, result.stderr
    assert json.loads((out / "stages" / "tracemalloc.json").read_text())["data"]["windows"] == []
