"""Threads, fork and exec: 8 native threads allocating at once are counted exactly and get native
stacks; a forked child writes a capture of its own; programs the target execs run untouched; bad
options warn and fall back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from leakbench.analysis.native import leaks
from leakbench.native.capture import KIND_MALLOC, OP_FREE
from leakbench.native.symbolize import resolve_stacks
from tests.native.conftest import Tracked, compile_library, run_tracked

FIXTURES = Path(__file__).parent / "fixtures"


def test_eight_threads_of_200k_allocations_are_counted_exactly(tmp_path: Path, fixture_lib: Path) -> None:
    program = """
    import ctypes, os
    lib = ctypes.CDLL(os.environ["FIXTURE_LIB"])
    assert lib.fixture_churn(8, 200_000) == 0
    """
    tracked = run_tracked(tmp_path, program, env={"FIXTURE_LIB": str(fixture_lib)}, timeout=120)
    capture = tracked.capture()
    stacks = resolve_stacks(capture)
    worker = {sid for sid, frames in stacks.items() if frames and frames[0].function == "churn_worker"}
    ev = capture.events
    allocs: Counter[int] = Counter()
    threads: dict[int, set[int]] = {}
    ours: set[int] = set()
    for op, thread, address, size, stack in zip(ev.op, ev.thread, ev.address, ev.size, ev.stack, strict=True):
        if op == KIND_MALLOC and stack in worker:
            allocs[size] += 1
            threads.setdefault(size, set()).add(thread)
            ours.add(address)
    assert allocs == {1000 + t: 200_000 for t in range(8)}
    assert all(len(t) == 1 for t in threads.values()) and len(set().union(*threads.values())) == 8
    frees = sum(1 for op, a in zip(ev.op, ev.address, strict=True) if op == OP_FREE and a in ours)
    assert frees >= 8 * 200_000 - sum(t + 1 for t in range(8))  # every freed block (addresses are reused)
    report = leaks(capture, stacks)
    [kept] = [g for g in report.groups if g.stack in worker]  # the workers share one stack
    assert not any(f.kind == "python" for f in kept.frames)  # no Python on these threads: native only
    assert "fixture_churn" not in [f.function for f in kept.frames]  # a thread's stack starts in the thread
    assert (kept.count, kept.bytes) == (36, sum((1000 + t) * (t + 1) for t in range(8)))


def fork_program() -> str:
    return """
    import os, time
    before = bytearray(111_111)  # parent-before
    pid = os.fork()
    if pid == 0:
        child = [bytearray(222_222) for _ in range(4)]  # child-site
        os._exit(0)
    os.waitpid(pid, 0)
    after = bytearray(333_333)  # parent-after
    print(pid, flush=True)
    """


def live_sizes(tracked: Tracked, pid: int) -> Counter[int]:
    capture = next(c for c in tracked.captures() if c.pid == pid)
    report = leaks(capture, resolve_stacks(capture))
    return Counter(
        {g.bytes // g.count: g.count for g in report.groups if g.bytes // g.count in (111_112, 222_223, 333_334)}
    )


def test_a_forked_child_writes_its_own_capture(tmp_path: Path) -> None:
    tracked = run_tracked(tmp_path, fork_program())
    child_pid = int(tracked.proc.stdout)
    captures = {c.pid: c for c in tracked.captures()}
    assert len(captures) == 2 and child_pid in captures
    parent_pid = next(p for p in captures if p != child_pid)
    child = captures[child_pid]
    assert child.header.forked_child and child.header.ppid == parent_pid and child.complete
    assert captures[parent_pid].complete and not captures[parent_pid].header.forked_child
    assert live_sizes(tracked, child_pid) == {222_223: 4}  # the child's capture holds only what it did
    assert live_sizes(tracked, parent_pid) == {111_112: 1, 333_334: 1}
    child_sites = {f.line for s in resolve_stacks(child).values() for f in s if f.kind == "python"}
    assert tracked.line("child-site") in child_sites


def test_a_forked_child_is_left_alone_when_asked(tmp_path: Path) -> None:
    tracked = run_tracked(tmp_path, fork_program(), follow_fork=0)
    assert len(tracked.captures()) == 1


def test_programs_the_target_execs_run_untouched(tmp_path: Path) -> None:
    program = """
    import subprocess, os
    out = subprocess.run(["sh", "-c", "echo from-shell; ls / >/dev/null"], capture_output=True, text=True)
    print(out.stdout.strip(), out.returncode)
    print(os.system("true"))
    """
    tracked = run_tracked(tmp_path, program)
    assert tracked.proc.stdout.split() == ["from-shell", "0", "0"]
    assert tracked.proc.stderr == ""
    assert len(tracked.captures()) == 1  # only the Python target: the shell has no interpreter


def test_a_bad_option_warns_and_falls_back(tmp_path: Path) -> None:
    tracked = run_tracked(tmp_path, "x = bytearray(10)\n", env={"LEAKBENCH_TICK_MS": "fast"})
    assert "ignoring LEAKBENCH_TICK_MS=fast" in tracked.proc.stderr
    assert tracked.capture().header.tick_ms == 20


def test_dlsym_rtld_next_still_resolves_from_its_real_caller(tmp_path: Path) -> None:
    b = compile_library(FIXTURES / "next_b.c", tmp_path / "libnext_b.so", "-Wl,-soname,libnext_b.so")
    a = compile_library(
        FIXTURES / "next_a.c",
        tmp_path / "libnext_a.so",
        "-ldl",
        f"-L{tmp_path}",
        f"-Wl,-rpath,{tmp_path}",
        "-Wl,--no-as-needed",
        "-lnext_b",
    )
    program = f"""
    import ctypes
    ctypes.CDLL({str(b)!r})
    print(ctypes.CDLL({str(a)!r}).fixture_call_next())
    """
    tracked = run_tracked(tmp_path, program)
    assert tracked.proc.stdout.strip() == "2"
