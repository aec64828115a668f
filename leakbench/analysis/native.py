"""What a native capture says: live bytes per site over time, what was never freed (grouped by stack),
the high-water mark and what was live at it, what appeared between two moments and stayed, failed
allocations, and the interpreter's own arena growth kept apart from leaks.

Pure functions over a decoded `Capture` and its resolved stacks (`resolve_stacks`); no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from leakbench.analysis.model import Frame, Suspect
from leakbench.native.capture import (
    KIND_COUNT,
    KIND_MMAP,
    KIND_MMAP_INTERP,
    KIND_NAMES,
    OP_FAILED,
    OP_FREE,
    OP_MUNMAP,
    OP_RESTORE,
    Capture,
    Mark,
)
from leakbench.native.symbolize import StackFrame

Stacks = Mapping[int, tuple[StackFrame, ...]]
ARENA_SITE = "interpreter arenas (pymalloc: Python objects of 512 bytes or less)"
Cut = Literal["finalizing", "end"]

# Native functions through which tracemalloc sees an allocation (numpy reports its data buffers too),
# and pymalloc's own bookkeeping, which it does not see even though it runs inside PyObject_Malloc.
_TRACEMALLOC_VISIBLE = ("PyMem_", "_PyMem_", "PyObject_", "_PyObject_", "PyDataMem_")
_ALLOCATOR_INTERNALS = ("arena_map_", "new_arena", "allocate_from_new_pool", "_PyObject_ArenaMmap")


@dataclass(frozen=True, slots=True)
class Block:
    """One live allocation."""

    address: int
    size: int
    stack: int
    kind: int
    index: int  # position of its event in the capture
    time_ms: int


@dataclass(frozen=True, slots=True)
class StackGroup:
    """Live allocations that share one stack."""

    stack: int
    frames: tuple[StackFrame, ...]
    bytes: int
    count: int
    first_ms: int
    last_ms: int
    interpreter: bool  # the interpreter's own mappings (pymalloc arenas), not the program's memory


@dataclass(frozen=True, slots=True)
class LeakReport:
    """What was still live at the cut, excluding the interpreter's own arenas (reported apart)."""

    cut: str  # "python-finalizing", "end" or "cut" (a capture that ends without closing)
    cut_ms: int
    groups: tuple[StackGroup, ...]  # biggest first
    bytes: int
    count: int
    interpreter_bytes: int
    interpreter_count: int


@dataclass(frozen=True, slots=True)
class HighWater:
    bytes: int
    time_ms: int
    event_index: int
    groups: tuple[StackGroup, ...]  # what was live at the peak, biggest first (interpreter arenas included)


@dataclass(frozen=True, slots=True)
class SiteSeries:
    site: str
    bytes: tuple[int, ...]  # live bytes at each time of the Timeline


@dataclass(frozen=True, slots=True)
class Timeline:
    """Live bytes per allocation site over time (the temporal view)."""

    times_ms: tuple[int, ...]
    total: tuple[int, ...]
    sites: tuple[SiteSeries, ...]  # the sites with the most live bytes at the end, then at their peak


@dataclass(frozen=True, slots=True)
class FailedAllocation:
    time_ms: int
    size: int
    allocator: str
    thread: int
    frames: tuple[StackFrame, ...]


@dataclass(frozen=True, slots=True)
class ArenaGrowth:
    """The interpreter's own anonymous mappings (pymalloc arenas, frame stacks): Python objects of 512
    bytes or less live there, so their growth says "many small objects", not which line leaked them."""

    start_bytes: int
    end_bytes: int
    peak_bytes: int
    mapped: int
    unmapped: int


# ---- the replay ----


class _Heap:
    """Live blocks while replaying events; mmaps kept apart so munmap can release ranges."""

    __slots__ = ("blocks", "interp_bytes", "maps", "peak", "peak_index", "total")

    def __init__(self) -> None:
        self.blocks: dict[int, tuple[int, int, int, int, int]] = {}  # addr -> (size, stack, kind, index, ms)
        self.maps: dict[int, tuple[int, int, int, int, int]] = {}
        self.total = 0
        self.interp_bytes = 0
        self.peak = 0
        self.peak_index = 0  # events replayed when the peak was reached

    def unmap(self, addr: int, length: int, ms: int, index: int) -> list[tuple[int, tuple[int, int, int, int, int]]]:
        """Release [addr, addr+length); returns the (address, block) pieces removed."""
        end = addr + length
        removed = []
        exact = self.maps.get(addr)
        candidates = [addr] if exact is not None and exact[0] <= length else list(self.maps)
        for start in candidates:
            block = self.maps[start]
            stop = start + block[0]
            if stop <= addr or start >= end:
                continue
            del self.maps[start]
            removed.append((start, block))
            self._sub(block)
            # keep what lies outside the unmapped range
            if start < addr:
                self._add_map(start, (addr - start, *block[1:]))
            if stop > end:
                self._add_map(end, (stop - end, *block[1:]))
        return removed

    def _add_map(self, addr: int, block: tuple[int, int, int, int, int]) -> None:
        self.maps[addr] = block
        self.total += block[0]
        if block[2] == KIND_MMAP_INTERP:
            self.interp_bytes += block[0]

    def _sub(self, block: tuple[int, int, int, int, int]) -> None:
        self.total -= block[0]
        if block[2] == KIND_MMAP_INTERP:
            self.interp_bytes -= block[0]

    def apply(self, capture: Capture, stop: int | None = None, start: int = 0) -> None:
        """Replay events [start, stop)."""
        ev = capture.events
        n = len(ev) if stop is None else min(stop, len(ev))
        blocks = self.blocks
        ops, addrs, sizes, stacks, times = ev.op, ev.address, ev.size, ev.stack, ev.time_ms
        total = self.total
        peak = self.peak
        for i in range(start, n):
            op = ops[i]
            if op < KIND_MMAP:
                size = sizes[i]
                old = blocks.get(addrs[i])
                if old is not None:  # a missed free (e.g. freed by code that bypassed the hooks)
                    total -= old[0]
                blocks[addrs[i]] = (size, stacks[i], op, i, times[i])
                total += size
                if total > peak:
                    peak = total
                    self.peak_index = i + 1
            elif op == OP_FREE:
                old = blocks.pop(addrs[i], None)
                if old is not None:
                    total -= old[0]
            else:
                self.total = total
                self._other(capture, i, op)
                total = self.total
                if total > peak:
                    peak = total
                    self.peak_index = i + 1
        self.total = total
        self.peak = peak

    def _other(self, capture: Capture, i: int, op: int) -> None:
        ev = capture.events
        if op in (KIND_MMAP, KIND_MMAP_INTERP):
            self.unmap(ev.address[i], ev.size[i], ev.time_ms[i], i)  # a new mapping replaces what was there
            self._add_map(ev.address[i], (ev.size[i], ev.stack[i], op, i, ev.time_ms[i]))
        elif op == OP_MUNMAP:
            self.unmap(ev.address[i], ev.size[i], ev.time_ms[i], i)
        elif op == OP_RESTORE:
            restored = _find_freed_block(capture, i)
            if restored is not None:
                self.blocks[ev.address[i]] = restored
                self.total += restored[0]
        # OP_FAILED changes nothing live


def _find_freed_block(capture: Capture, restore_index: int) -> tuple[int, int, int, int, int] | None:
    """A failed realloc restores the block freed just before it: find that block's allocation."""
    ev = capture.events
    addr = ev.address[restore_index]
    seen_free = False
    for j in range(restore_index - 1, -1, -1):
        if ev.address[j] != addr:
            continue
        if ev.op[j] == OP_FREE and not seen_free:
            seen_free = True
        elif ev.op[j] < KIND_MMAP and seen_free:
            return (ev.size[j], ev.stack[j], ev.op[j], j, ev.time_ms[j])
    return None


def _cut_index(capture: Capture, cut: Cut) -> tuple[int, str, int]:
    if cut == "finalizing":
        for mark in capture.marks:
            if mark.label == "python-finalizing":
                return mark.event_index, "python-finalizing", mark.time_ms
    label = "end" if capture.complete else "cut"
    return len(capture.events), label, capture.duration_ms


def _group(items: Iterable[tuple[int, tuple[int, int, int, int, int]]], stacks: Stacks) -> tuple[StackGroup, ...]:
    acc: dict[tuple[int, bool], list[int]] = {}
    for _addr, (size, stack, kind, _index, ms) in items:
        key = (stack, kind == KIND_MMAP_INTERP)
        entry = acc.get(key)
        if entry is None:
            acc[key] = [size, 1, ms, ms]
        else:
            entry[0] += size
            entry[1] += 1
            if ms < entry[2]:
                entry[2] = ms
            if ms > entry[3]:
                entry[3] = ms
    groups = [
        StackGroup(stack, stacks.get(stack, ()), b, c, first, last, interp)
        for (stack, interp), (b, c, first, last) in acc.items()
    ]
    groups.sort(key=lambda g: (-g.bytes, g.stack))
    return tuple(groups)


# ---- the views ----


def leaks(capture: Capture, stacks: Stacks, *, cut: Cut = "finalizing") -> LeakReport:
    """What was allocated and not freed by the cut, grouped by stack.

    The default cut is the moment the interpreter began finalising (memory released only by the
    interpreter's teardown was kept by the program all along); "end" uses the last record.
    """
    stop, label, cut_ms = _cut_index(capture, cut)
    heap = _Heap()
    heap.apply(capture, stop)
    groups = _group(list(heap.blocks.items()) + list(heap.maps.items()), stacks)
    program = tuple(g for g in groups if not g.interpreter)
    interp = [g for g in groups if g.interpreter]
    return LeakReport(
        cut=label,
        cut_ms=cut_ms,
        groups=program,
        bytes=sum(g.bytes for g in program),
        count=sum(g.count for g in program),
        interpreter_bytes=sum(g.bytes for g in interp),
        interpreter_count=sum(g.count for g in interp),
    )


def high_water_mark(capture: Capture, stacks: Stacks) -> HighWater:
    """The most bytes live at once (heap blocks and anonymous mappings) and what was live then."""
    heap = _Heap()
    ev = capture.events
    heap.apply(capture)
    peak, peak_index = heap.peak, heap.peak_index
    at = _Heap()
    at.apply(capture, peak_index)
    groups = _group(list(at.blocks.items()) + list(at.maps.items()), stacks)
    time_ms = ev.time_ms[peak_index - 1] if peak_index else 0
    return HighWater(peak, time_ms, peak_index, groups)


def heap_diff(capture: Capture, stacks: Stacks, start: int | Mark, stop: int | Mark) -> tuple[StackGroup, ...]:
    """What was allocated after `start` and is still live at `stop`, grouped by stack, biggest first.

    A moment is a time in ms since the target started (events of that millisecond count as before it),
    or a Mark, which is exact to the event.
    """
    first, last = _index_at(capture, start), _index_at(capture, stop)
    heap = _Heap()
    heap.apply(capture, last)
    appeared = [(a, b) for a, b in list(heap.blocks.items()) + list(heap.maps.items()) if b[3] >= first]
    return _group(appeared, stacks)


def _index_at(capture: Capture, moment: int | Mark) -> int:
    if isinstance(moment, Mark):
        return moment.event_index
    times = capture.events.time_ms
    return bisect.bisect_right(times, moment)


def failed_allocations(capture: Capture, stacks: Stacks) -> tuple[FailedAllocation, ...]:
    """Allocations that returned NULL / MAP_FAILED: the target ran out of memory (or address space),
    even when it caught the MemoryError itself."""
    ev = capture.events
    out = []
    for i in range(len(ev)):
        if ev.op[i] == OP_FAILED:
            kind = ev.address[i]
            name = KIND_NAMES[kind] if 0 <= kind < KIND_COUNT else f"kind {kind}"
            out.append(FailedAllocation(ev.time_ms[i], ev.size[i], name, ev.thread[i], stacks.get(ev.stack[i], ())))
    return tuple(out)


def arena_growth(capture: Capture, *, cut: Cut = "finalizing") -> ArenaGrowth:
    """The interpreter's own mappings up to the cut (as for leaks), reported apart from the program's."""
    ev = capture.events
    stop, _, _ = _cut_index(capture, cut)
    live: dict[int, int] = {}
    total = peak = 0
    mapped = unmapped = 0
    start_bytes: int | None = None
    for i in range(stop):
        op = ev.op[i]
        if op == KIND_MMAP_INTERP:
            live[ev.address[i]] = ev.size[i]
            total += ev.size[i]
            mapped += 1
            peak = max(peak, total)
            if start_bytes is None:
                start_bytes = 0
        elif op == OP_MUNMAP:
            size = live.pop(ev.address[i], None)
            if size is not None:
                total -= size
                unmapped += 1
    return ArenaGrowth(start_bytes or 0, total, peak, mapped, unmapped)


def site_timeline(
    capture: Capture,
    stacks: Stacks,
    *,
    site_of: Callable[[tuple[StackFrame, ...]], str] | None = None,
    points: int = 50,
    top: int = 10,
    cut: Cut = "finalizing",
) -> Timeline:
    """Live bytes per site at `points` evenly spaced times up to the cut (as for leaks); sites named by
    `site_of` (default: the innermost Python frame, else the innermost native function), the
    interpreter's arenas as one site of their own (ARENA_SITE)."""
    name_of = site_of or default_site
    # sites numbered once per stack, so the loop below indexes lists instead of hashing names
    names: list[str] = []
    index_of_name: dict[str, int] = {}
    max_stack = max(capture.stacks, default=0)
    site_of_stack = [0] * (max_stack + 1)
    names.append(ARENA_SITE)  # site 0: the interpreter's own mappings, whoever triggered them
    index_of_name[ARENA_SITE] = 0
    for sid in range(max_stack + 1):
        name = name_of(stacks.get(sid, ()))
        site = index_of_name.get(name)
        if site is None:
            site = index_of_name[name] = len(names)
            names.append(name)
        site_of_stack[sid] = site
    ev = capture.events
    stop, _, cut_ms = _cut_index(capture, cut)
    duration = max(cut_ms, 1)
    bounds = [duration * (k + 1) // points for k in range(points)]
    live: dict[int, tuple[int, int]] = {}
    per_site = [0] * len(names)
    samples: list[list[int]] = []
    totals: list[int] = []
    total = 0
    b = 0
    ops, times, addrs, sizes, sids = ev.op, ev.time_ms, ev.address, ev.size, ev.stack
    next_bound = bounds[0] if bounds else 0
    for i in range(stop):
        if times[i] > next_bound and b < points:
            while b < points and times[i] > bounds[b]:
                samples.append(per_site.copy())
                totals.append(total)
                b += 1
            next_bound = bounds[b] if b < points else 1 << 62
        op = ops[i]
        if op < KIND_COUNT:
            addr = addrs[i]
            old = live.get(addr)
            if old is not None:
                per_site[old[1]] -= old[0]
                total -= old[0]
            size = sizes[i]
            site = 0 if op == KIND_MMAP_INTERP else site_of_stack[sids[i]]
            live[addr] = (size, site)
            per_site[site] += size
            total += size
        elif op in (OP_FREE, OP_MUNMAP):
            old = live.pop(addrs[i], None)
            if old is not None:
                per_site[old[1]] -= old[0]
                total -= old[0]
    while b < points:
        samples.append(per_site.copy())
        totals.append(total)
        b += 1
    final = samples[-1] if samples else [0] * len(names)
    peaks = [max(column) for column in zip(*samples, strict=True)] if samples else [0] * len(names)
    order = sorted(range(len(names)), key=lambda k: (-final[k], -peaks[k], names[k]))
    chosen = [k for k in order if peaks[k] > 0][:top]
    series = tuple(SiteSeries(names[k], tuple(sample[k] for sample in samples)) for k in chosen)
    return Timeline(tuple(bounds), tuple(totals), series)


def default_site(frames: Sequence[StackFrame]) -> str:
    for frame in frames:
        if frame.kind == "python":
            return f"{frame.file}:{frame.line} ({frame.function})"
    return frames[0].function if frames else "<no stack>"


# ---- suspects for the report ----


@dataclass(slots=True)
class _SuspectTotal:
    bytes: int
    count: int
    biggest: StackGroup  # the largest group at this site: its stack speaks for the site


def native_part(frames: Sequence[StackFrame]) -> tuple[str, ...]:
    """Symbol names of the native frames inside the innermost Python frame, innermost first."""
    out = []
    for frame in frames:
        if frame.kind == "python":
            break
        out.append(frame.function)
    return tuple(out)


def visible_to_tracemalloc(frames: Sequence[StackFrame]) -> bool:
    """Whether the allocation went through an allocator tracemalloc hooks (judged from the few native
    frames nearest malloc)."""
    for name in native_part(frames)[:4]:
        if name.startswith(_ALLOCATOR_INTERNALS):
            return False
        if name.startswith(_TRACEMALLOC_VISIBLE):
            return True
    return False


def suspects_from_leaks(
    report: LeakReport,
    *,
    pid: int,
    is_user_file: Callable[[str], bool],
    limit: int = 20,
    min_bytes: int = 1,
    source_line: Callable[[str, int], str] | None = None,
) -> list[Suspect]:
    """Leaks as ranked Suspects, each attributed to the innermost Python frame in the user's own code
    (else the innermost Python frame, else the innermost native function)."""
    merged: dict[tuple[str, int, str], _SuspectTotal] = {}
    for group in report.groups:
        frames = group.frames
        python = [f for f in frames if f.kind == "python"]
        user = next((f for f in python if is_user_file(f.file)), None)
        where = user or (python[0] if python else None)
        if where is not None:
            key = (where.file, where.line, where.function)
        elif frames:
            key = (frames[0].module or "<native>", 0, frames[0].function)
        else:
            key = ("<unknown>", 0, "<no stack>")
        entry = merged.get(key)
        if entry is None:
            merged[key] = _SuspectTotal(group.bytes, group.count, group)
        else:
            entry.bytes += group.bytes
            entry.count += group.count
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1].bytes, kv[0]))
    out = []
    for (file, line, function), total in ranked[:limit]:
        if total.bytes < min_bytes:
            continue
        frames = total.biggest.frames
        traceback = tuple(Frame(f.file, f.line, f.function) for f in reversed(frames) if f.kind == "python")
        out.append(
            Suspect(
                file=file,
                line=line,
                function=function,
                bytes=total.bytes,
                count=total.count,
                pid=pid,
                stages=("native",),
                visible_to_tracemalloc=visible_to_tracemalloc(frames),
                native_frames=native_part(frames),
                text=source_line(file, line) if source_line and line else "",
                traceback=traceback,  # outermost first, like every Frame tuple
            )
        )
    return out
