"""Stacks: the cached fast unwinder gives the same merged stacks as libgcc's unwinder, Python frames sit
where the interpreter ran them, and libraries loaded at run time are named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from leakbench.native.capture import KIND_MMAP, Capture
from leakbench.native.symbolize import resolve_stacks
from tests.native.conftest import run_tracked

WORKLOAD = """
import ctypes, json, os, re, threading
lib = ctypes.CDLL(os.environ["FIXTURE_LIB"])
lib.fixture_leak.restype = ctypes.c_void_p
lib.fixture_leak.argtypes = [ctypes.c_size_t]
def nested(depth):
    if depth:
        return nested(depth - 1)
    return [lib.fixture_leak(5000 + i) for i in range(3)]
class Handler:
    def handle(self, i):
        text = json.dumps({"k": list(range(i % 200)), "s": "x" * (i % 3000)})
        return re.findall(r"\\d+", text), json.loads(text)
h = Handler()
for i in range(3000):
    h.handle(i)
kept = nested(12)
t = threading.Thread(target=lambda: lib.fixture_churn(2, 1000))
t.start(); t.join()
"""


def signature(capture: Capture) -> Counter[tuple[int, tuple[str, ...]]]:
    stacks = resolve_stacks(capture)
    out: Counter[tuple[int, tuple[str, ...]]] = Counter()
    for op, size, stack in zip(capture.events.op, capture.events.size, capture.events.stack, strict=True):
        frames = tuple(f"{f.function}:{f.line}" for f in stacks[stack])
        # arena mmaps happen at moments that vary from run to run, and so do the nodes of obmalloc's arena
        # map, made when an arena lands in an address range not seen before (the layout is random)
        if op < KIND_MMAP and frames[:1] != ("arena_map_mark_used:0",):
            out[(size, frames)] += 1
    return out


def test_fast_unwinding_matches_libgcc_frame_for_frame(tmp_path: Path, fixture_lib: Path) -> None:
    env = {"FIXTURE_LIB": str(fixture_lib), "PYTHONHASHSEED": "0"}
    (tmp_path / "a").mkdir()  # same-length paths: argv strings of the same size
    (tmp_path / "b").mkdir()
    fast = run_tracked(tmp_path / "a", WORKLOAD, env=env).capture()
    slow = run_tracked(tmp_path / "b", WORKLOAD, env={**env, "LEAKBENCH_FAST_UNWIND": "0"}).capture()
    a, b = signature(fast), signature(slow)
    assert sum(a.values()) > 10_000
    assert a == b, f"{sum((a - b).values())} allocations differ, e.g. {list((a - b).items())[:2]}"


def test_python_frames_are_placed_where_the_interpreter_ran_them(tmp_path: Path, fixture_lib: Path) -> None:
    tracked = run_tracked(tmp_path, WORKLOAD, env={"FIXTURE_LIB": str(fixture_lib)})
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    [frames] = {
        stacks[s]
        for op, z, s in zip(capture.events.op, capture.events.size, capture.events.stack, strict=True)
        if z == 5000
    }
    names = [f.function for f in frames]
    # the C function, then ctypes' call machinery, then Python: listcomp, 13 x nested, module
    assert names[0] == "fixture_leak"
    first_python = next(i for i, f in enumerate(frames) if f.kind == "python")
    assert "_ctypes_callproc" in names[:first_python]
    python = [f.function for f in frames if f.kind == "python"]
    # 3.12 and later run a comprehension inline, in its function's frame (PEP 709)
    listcomp = [] if capture.header.python_version >= 0x030C0000 else ["nested.<locals>.<listcomp>"]
    assert python == [*listcomp, *["nested"] * 13, "<module>"]
    assert not any(n.startswith("_PyEval_EvalFrameDefault") for n in names)
    assert frames[0].module == str(fixture_lib)  # loaded with dlopen after start: still named


def test_python_lines_are_read_by_the_tracker_from_each_location_table(tmp_path: Path) -> None:
    """Given allocations on a line inside a statement that spans several lines and on a line far below
    its function's first line, when the tracker names their lines, then they are the lines that ran."""
    program = """
    def build(n):
        data = [
            bytearray(n),
            bytearray(n + 1),  # second
        ]
        return data
    def far():
        total = 0
        for k in range(3):
            total += k
        kept = bytearray(77_777)  # far
        return kept, total
    a = build(123_456)
    b = far()
    """
    tracked = run_tracked(tmp_path, program)
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    lines = {}
    for size, stack in zip(capture.events.size, capture.events.stack, strict=True):
        if size in (123_458, 77_778):
            lines[size] = next(f.line for f in stacks[stack] if f.kind == "python")
    assert lines == {123_458: tracked.line("second"), 77_778: tracked.line("far")}
    assert all(not hasattr(code, "linetable") for code in capture.codes.values())


def test_every_line_of_a_long_function_is_named_right(tmp_path: Path) -> None:
    """Given allocations on many lines of a long function (far apart, so that the location table needs
    its long entries; inside a comprehension, a lambda, a with block and a multi-line call), when the
    tracker names their lines, then each is the line of the allocation."""
    body = ["import contextlib", "def long():", "    kept = []"]
    for k in range(24):
        body += ["    x = 0"] * (k * 37 % 200)  # gaps of varied lengths
        size = 20_000 + k
        form = k % 4
        if form == 0:
            body.append(f"    kept.append(bytearray({size}))  # site-{k}")
        elif form == 1:
            body.append(f"    kept.extend([bytearray({size}) for _ in range(1)])  # site-{k}")
        elif form == 2:
            body.append(f"    kept.append((lambda: bytearray({size}))())  # site-{k}")
        else:
            body += [
                "    with contextlib.nullcontext():",
                "        kept.append(",
                f"            bytearray({size})  # site-{k}",
                "        )",
            ]
    body += ["    return kept", "result = long()"]
    tracked = run_tracked(tmp_path, "\n".join(body) + "\n")
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    seen = {}
    for size, stack in zip(capture.events.size, capture.events.stack, strict=True):
        if 20_001 <= size <= 20_024:
            seen[size - 20_001] = next(f.line for f in stacks[stack] if f.kind == "python")
    assert seen == {k: tracked.line(f"site-{k}") for k in range(24)}
