"""A target killed with SIGKILL leaves a capture readable up to its last 100 ms; a target out of address
space (RLIMIT_AS) leaves a complete capture that names the allocations that failed."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from leakbench.analysis.native import failed_allocations
from leakbench.native.capture import KIND_COUNT, find_captures, read_capture
from leakbench.native.runner import preload_env
from leakbench.native.symbolize import resolve_stacks
from tests.native.conftest import PYTHON, run_tracked


def test_sigkill_loses_at_most_the_last_100_ms(tmp_path: Path) -> None:
    script = tmp_path / "busy.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            kept = []
            print("ready", flush=True)
            while True:
                kept.append(bytearray(5000))
                if len(kept) > 2000:
                    kept.clear()
                time.sleep(0.0005)
            """
        )
    )
    template = str(tmp_path / "killed.%p.lbt")
    proc = subprocess.Popen([PYTHON, str(script)], env=preload_env(template), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(0.7)
    killed_at = time.monotonic_ns()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    [path] = find_captures(template)
    capture = read_capture(path)
    assert not capture.complete and capture.end is None
    assert "cut at" in capture.describe_cut()
    last_event_ns = capture.header.start_monotonic_ns + capture.events.time_ms[-1] * 1_000_000
    lost_ms = (killed_at - last_event_ns) / 1e6
    assert lost_ms <= 100, f"the capture stops {lost_ms:.0f} ms before the kill"
    allocations = sum(1 for op in capture.events.op if op < KIND_COUNT)
    assert allocations > 500


def test_memory_error_under_rlimit_as_leaves_a_complete_capture_with_the_failure(tmp_path: Path) -> None:
    program = """
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    chunks = []
    try:
        while True:
            chunks.append(bytearray(64 << 20))  # grow-site
    except MemoryError:
        chunks.clear()
    try:
        huge = bytearray(3 << 30)  # huge-site
    except MemoryError:
        pass
    print("caught", flush=True)
    """
    tracked = run_tracked(tmp_path, program)
    assert tracked.proc.stdout == "caught\n"
    capture = tracked.capture()
    assert capture.complete
    failures = failed_allocations(capture, resolve_stacks(capture))
    at = {(f.size, next(fr.line for fr in f.frames if fr.kind == "python")): f.allocator for f in failures}
    assert at.get((3 << 30 | 1, tracked.line("huge-site"))) in ("malloc", "mmap")
    assert any(line == tracked.line("grow-site") and size >= 64 << 20 for size, line in at)


def test_an_uncaught_memory_error_still_closes_the_capture(tmp_path: Path) -> None:
    program = """
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    x = bytearray(2 << 30)  # boom
    """
    tracked = run_tracked(tmp_path, program, check=False)
    assert tracked.proc.returncode == 1 and "MemoryError" in tracked.proc.stderr
    capture = tracked.capture()
    assert capture.complete
    [failure] = [f for f in failed_allocations(capture, resolve_stacks(capture)) if f.size == (2 << 30) + 1]
    assert any(fr.line == tracked.line("boom") for fr in failure.frames if fr.kind == "python")


def test_os_exit_flushes_what_the_process_recorded(tmp_path: Path) -> None:
    program = """
    import os
    data = [bytearray(12345) for _ in range(3)]  # kept
    os._exit(3)
    """
    tracked = run_tracked(tmp_path, program, check=False, tick_ms=100)
    assert tracked.proc.returncode == 3
    capture = tracked.capture()
    assert capture.complete
    assert sum(1 for s in capture.events.size if s == 12346) == 3
