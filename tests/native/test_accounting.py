"""Given a program that allocates known sizes from known lines and frees some, the capture accounts for
every byte: each allocation once, each free matched, leaks exactly the blocks never freed, attributed to
the Python line and the C function that made them."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.analysis.native import StackGroup, heap_diff, leaks, suspects_from_leaks
from leakbench.native.capture import KIND_CALLOC, KIND_MALLOC, KIND_POSIX_MEMALIGN, KIND_REALLOC, OP_FREE
from leakbench.native.symbolize import resolve_stacks
from tests.native.conftest import Tracked, run_tracked

PROGRAM = """
import ctypes, os, time
lib = ctypes.CDLL(os.environ["FIXTURE_LIB"])
for name in ("fixture_leak", "fixture_calloc", "fixture_realloc", "fixture_aligned"):
    getattr(lib, name).restype = ctypes.c_void_p
lib.fixture_leak.argtypes = [ctypes.c_size_t]
lib.fixture_free.argtypes = [ctypes.c_void_p]
lib.fixture_calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
lib.fixture_realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
lib.fixture_aligned.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc = ctypes.CDLL("libc.so.6")  # a handle on libc itself: dlsym(handle, "malloc")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
mark = ctypes.CDLL(None).lbt_mark
mark.argtypes = [ctypes.c_char_p]

def keep():
    return [lib.fixture_leak(3001 + i) for i in range(5)]  # leak-site

kept = keep()
tmp = [lib.fixture_leak(4001 + i) for i in range(5)]  # freed-site
for p in tmp:
    lib.fixture_free(p)
c = lib.fixture_calloc(7, 1111)  # calloc-site
r = lib.fixture_realloc(None, 5001)  # realloc-site
r = lib.fixture_realloc(r, 6001)  # grow-site
a = lib.fixture_aligned(64, 7001)  # aligned-site
d = libc.malloc(8001)  # dlsym-site
mark(b"t1")
between = lib.fixture_leak(9001)  # between-site
gone = lib.fixture_leak(9002)
lib.fixture_free(gone)
mark(b"t2")
after = lib.fixture_leak(9003)
"""

KNOWN = {
    3001,
    3002,
    3003,
    3004,
    3005,
    4001,
    4002,
    4003,
    4004,
    4005,
    7777,
    5001,
    6001,
    7001,
    8001,
    9001,
    9002,
    9003,
}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, fixture_lib: Path) -> Tracked:
    return run_tracked(tmp_path_factory.mktemp("accounting"), PROGRAM, env={"FIXTURE_LIB": str(fixture_lib)})


def innermost(group: StackGroup) -> str:
    return group.frames[0].function if group.frames else ""


def python_line(group: StackGroup, script: Path) -> int:
    return next(f.line for f in group.frames if f.kind == "python" and f.file == str(script))


def test_every_known_allocation_is_recorded_once_with_its_kind(tracked: Tracked) -> None:
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    ev = capture.events
    seen: dict[int, list[int]] = {}
    for op, size, stack in zip(ev.op, ev.size, ev.stack, strict=True):
        from_script = any(f.file == str(tracked.script) for f in stacks[stack])
        if op < 16 and size in KNOWN and from_script:
            seen.setdefault(size, []).append(op)
    assert seen == {
        **{s: [KIND_MALLOC] for s in (3001, 3002, 3003, 3004, 3005, 4001, 4002, 4003, 4004, 4005, 8001)},
        **{s: [KIND_MALLOC] for s in (9001, 9002, 9003)},
        7777: [KIND_CALLOC],
        5001: [KIND_REALLOC],
        6001: [KIND_REALLOC],
        7001: [KIND_POSIX_MEMALIGN],
    }
    assert capture.complete and capture.end is not None
    allocations = sum(1 for op in ev.op if op < 16)
    releases = sum(1 for op in ev.op if op in (OP_FREE, 17))
    assert (capture.end.allocations, capture.end.releases) == (allocations, releases)


def test_leaks_are_exactly_the_blocks_never_freed_attributed_to_line_and_function(tracked: Tracked) -> None:
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    report = leaks(capture, stacks)
    ours = [
        g
        for g in report.groups
        if innermost(g).startswith("fixture_")
        or next(((f.file, f.line) for f in g.frames if f.kind == "python"), None)
        == (str(tracked.script), tracked.line("dlsym-site"))
    ]
    by_site: dict[int, tuple[int, int]] = {}
    for group in ours:
        line = python_line(group, tracked.script)
        b, c = by_site.get(line, (0, 0))
        by_site[line] = (b + group.bytes, c + group.count)
    assert by_site == {
        tracked.line("leak-site"): (3001 + 3002 + 3003 + 3004 + 3005, 5),
        tracked.line("calloc-site"): (7777, 1),
        tracked.line("grow-site"): (6001, 1),
        tracked.line("aligned-site"): (7001, 1),
        tracked.line("dlsym-site"): (8001, 1),
        tracked.line("between-site"): (9001, 1),
        tracked.line("between-site") + 4: (9003, 1),
    }
    leak_site = next(g for g in ours if python_line(g, tracked.script) == tracked.line("leak-site"))
    python_frames = [f for f in leak_site.frames if f.kind == "python"]
    assert innermost(leak_site) == "fixture_leak"
    # 3.12 and later run a comprehension inline, in its function's frame (PEP 709)
    inlined = capture.header.python_version >= 0x030C0000
    listcomp = [] if inlined else [("keep.<locals>.<listcomp>", tracked.line("leak-site"))]
    assert [(f.function, f.line) for f in python_frames[: 3 - inlined]] == [
        *listcomp,
        ("keep", tracked.line("leak-site")),
        ("<module>", tracked.line("leak-site") + 2),
    ]


def test_suspects_rank_the_users_line_with_its_native_frames(tracked: Tracked) -> None:
    capture = tracked.capture()
    report = leaks(capture, resolve_stacks(capture))
    suspects = suspects_from_leaks(report, pid=capture.pid, is_user_file=lambda f: f == str(tracked.script))
    leak = next(s for s in suspects if s.line == tracked.line("leak-site"))
    assert (leak.file, leak.bytes, leak.count) == (str(tracked.script), 15015, 5)
    assert leak.native_frames[0] == "fixture_leak"
    assert leak.stages == ("native",) and not leak.visible_to_tracemalloc
    assert leak.traceback[-1].line == tracked.line("leak-site")


def test_heap_diff_between_marks_is_what_appeared_and_stayed(tracked: Tracked) -> None:
    capture = tracked.capture()
    t1, t2 = (next(m for m in capture.marks if m.label == label) for label in ("t1", "t2"))
    groups = heap_diff(capture, resolve_stacks(capture), t1, t2)
    ours = [g for g in groups if innermost(g) == "fixture_leak"]
    assert [(g.bytes, g.count) for g in ours] == [(9001, 1)]
