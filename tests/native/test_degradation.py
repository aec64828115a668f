"""Where Python frames cannot be read, the native stage says so and names no line: the stacks are native only,
and a native symbol (`lib.so:0`) never becomes a suspect (nor, through it, a line_profile target)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from leakbench.analysis.sites import FrameRules
from leakbench.native.capture import FLAG_FREE_THREADED, FLAG_PYTHON_UNREADABLE, read_capture
from leakbench.report.native_section import native_blocks
from leakbench.stages.native import analyse_capture, capture_views
from tests.native.conftest import run_tracked

PROGRAM = """
import time
kept = []
for i in range(40):
    kept.append(bytearray(200_000))  # grows
    time.sleep(0.002)
"""


RULES = FrameRules(("/nowhere/",), "/nowhere/agent/")  # every file is the user's


def test_stacks_without_python_frames_make_no_suspect(tmp_path: Path) -> None:
    """The real tracker with Python frames off: the leak is still in the table, but no `.so:0` suspect."""
    tracked = run_tracked(tmp_path, PROGRAM, python_stacks=0)
    capture = tracked.capture()
    views = capture_views(capture, rules=RULES)
    assert views.leaks.bytes >= 40 * 200_000
    assert views.leaks.groups and all(f.kind == "native" for f in views.leaks.groups[0].frames)
    assert views.suspects == []


def _flag(path: Path, flags: int) -> None:
    """Set header flags as an interpreter whose frames the tracker cannot read would have them."""
    data = bytearray(path.read_bytes())
    (old,) = struct.unpack_from("<I", data, 20)
    struct.pack_into("<I", data, 20, (old & ~1) | flags)
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    path.write_bytes(bytes(data))


def test_unreadable_frames_are_named_in_the_stage_and_report(tmp_path: Path) -> None:
    tracked = run_tracked(tmp_path, PROGRAM, python_stacks=0)
    path = Path(tracked.capture().path)
    _flag(path, FLAG_PYTHON_UNREADABLE)
    capture = read_capture(path)
    version = f"{capture.header.python_version >> 24}.{(capture.header.python_version >> 16) & 0xFF}"
    wanted = f"Python frames unavailable on CPython {version}: native stacks only"
    assert capture.header.python_frames_unavailable == wanted
    suspects, summary = analyse_capture(capture, path, rules=RULES, out_dir=tmp_path / "out")
    assert summary["python_frames"] == wanted and suspects == []
    report = native_blocks({"native": {"status": "ok", "data": {"processes": [summary]}}})
    assert wanted in repr(report)
    _flag(path, FLAG_PYTHON_UNREADABLE | FLAG_FREE_THREADED)
    assert read_capture(path).header.python_frames_unavailable.startswith(
        f"Python frames unavailable on free-threaded CPython {version}t"
    )
