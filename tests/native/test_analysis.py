"""The analysis views on a real capture: the interpreter's arena growth is kept apart from leaks, the
high-water mark sees a peak that was freed, and the timeline shows the leaking site growing."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.analysis.native import (
    ARENA_SITE,
    HeapHistory,
    arena_growth,
    heap_diff,
    high_water_mark,
    leaks,
    site_timeline,
    suspects_from_leaks,
)
from leakbench.native.capture import compact_capture, read_capture
from leakbench.native.symbolize import resolve_stacks
from leakbench.report.flamegraph import render_flamegraph_html
from tests.native import replay_oracle as oracle
from tests.native.conftest import Tracked, run_tracked

PROGRAM = """
import time
small = []
big = []
def grow(i):
    small.extend(object() for _ in range(2000))  # small-site
    big.append(bytearray(300_000))  # big-site
for i in range(30):
    grow(i)
    time.sleep(0.005)
spike = bytearray(40_000_000)  # spike-site
del spike
"""


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Tracked:
    return run_tracked(tmp_path_factory.mktemp("analysis"), PROGRAM, tick_ms=5)


def test_arena_growth_is_not_blamed_on_the_line_that_triggered_it(tracked: Tracked) -> None:
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    report = leaks(capture, stacks)
    arenas = arena_growth(capture)
    assert arenas.end_bytes >= 2 << 20  # 60k small objects need a few 1 MiB arenas
    assert report.interpreter_bytes == arenas.end_bytes
    assert all(not g.interpreter for g in report.groups)
    suspects = suspects_from_leaks(report, pid=capture.pid, is_user_file=lambda f: f == str(tracked.script))
    assert (suspects[0].line, suspects[0].bytes) == (tracked.line("big-site"), 30 * 300_001)
    assert tracked.line("small-site") not in {s.line for s in suspects if s.bytes >= 1 << 20}


def test_high_water_mark_sees_the_freed_spike(tracked: Tracked) -> None:
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    peak = high_water_mark(capture, stacks)
    lines = {f.line for g in peak.groups[:1] for f in g.frames if f.kind == "python"}
    assert tracked.line("spike-site") in lines
    assert peak.bytes >= 40_000_000 + 30 * 300_000
    assert leaks(capture, stacks).bytes < 40_000_000


def test_timeline_shows_the_leaking_site_growing(tracked: Tracked) -> None:
    capture = tracked.capture()
    timeline = site_timeline(capture, resolve_stacks(capture), points=10)
    big = next(s for s in timeline.sites if s.site.startswith(f"{tracked.script}:{tracked.line('big-site')}"))
    assert big.bytes[-1] == 30 * 300_001
    assert big.bytes[2] < big.bytes[5] < big.bytes[-1]
    assert any(s.site == ARENA_SITE for s in timeline.sites)


def test_a_compacted_capture_reads_the_same_and_renders(tracked: Tracked, tmp_path: Path) -> None:
    capture = tracked.capture()
    copy = tmp_path / "copy.lbt"
    copy.write_bytes(Path(capture.path).read_bytes())
    assert compact_capture(copy) < capture.size_bytes
    again = read_capture(copy)
    assert list(again.events.address) == list(capture.events.address) and again.complete
    page = render_flamegraph_html(leaks(again, resolve_stacks(again)).groups, title="<leaks> & more")
    assert "&lt;leaks&gt; &amp; more" in page and "<script src" not in page and "http" not in page


class _EverythingLong(HeapHistory):
    SHORT = 1  # every block is listed in `longs`: the other path of each view


@pytest.mark.parametrize("history_type", [HeapHistory, _EverythingLong])
def test_one_replay_gives_the_views_a_replay_per_view_gave(tracked: Tracked, history_type: type[HeapHistory]) -> None:
    """Given a recorded capture, when every view reads from one HeapHistory, then leaks, the high-water
    mark, what appeared between two moments and the timeline are those of a fresh replay per view."""
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    history = history_type(capture)
    for cut in ("finalizing", "end"):
        assert leaks(capture, stacks, cut=cut, history=history) == oracle.leaks(capture, stacks, cut=cut)
        timeline = site_timeline(capture, stacks, points=20, cut=cut, history=history)
        assert timeline == oracle.site_timeline(capture, stacks, points=20, cut=cut)
    assert high_water_mark(capture, stacks, history=history) == oracle.high_water_mark(capture, stacks)
    middle = capture.duration_ms // 2
    assert heap_diff(capture, stacks, middle // 2, middle, history=history) == oracle.heap_diff(
        capture, stacks, middle // 2, middle
    )
