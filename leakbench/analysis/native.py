"""What a native capture says: live bytes per site over time, what was never freed (grouped by stack),
the high-water mark and what was live at it, what appeared between two moments and stayed, failed
allocations, and the interpreter's own arena growth kept apart from leaks.

Pure functions over a decoded `Capture` and its resolved stacks (`resolve_stacks`); no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Literal

from leakbench.analysis.model import Frame, Suspect
from leakbench.analysis.sites import RISE_Z, own_frames
from leakbench.analysis.trend import rise_z
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
_ALLOCATING_WORDS = ("Malloc", "Calloc", "Realloc", "Alloc", "New", "NEW", "Resize", "Strdup")
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


# ---- the replay: once per capture, every view reads from it ----


class HeapHistory:
    """The lifetime of every block, from one replay of the capture.

    Heap blocks are the allocation events themselves: `end[i]` is the index of the event that released
    allocation `i` (a free, or an allocation at the same address after a missed free; `len(events)` if
    never; 0 for the other events). A block is live at a boundary `e` (after events `[0, e)`) when
    `i < e <= end[i]`. Most blocks die within a few events of their birth: those live at `e` are among the
    last SHORT events before it (one bulk scan); the others are listed in `longs` (by birth), so no view
    walks the whole capture.
    Mappings (whose munmaps may cut them into pieces) and blocks revived by a failed realloc are the few
    `extras`: (start, end, size, stack, kind, origin event, ms), live at `e` when `start < e <= end`.
    """

    SHORT = 4096  # events

    __slots__ = ("capture", "end", "extras", "long_ends", "longs", "peak", "peak_index")

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        ev = capture.events
        n = len(ev)
        short = self.SHORT
        ops, addrs, sizes = ev.op, ev.address, ev.size
        end = array("q", bytes(8 * n))  # not an allocation: end[i] = 0, never live
        longs: list[int] = []
        extras: list[list[int]] = []
        blocks: dict[int, int] = {}  # address -> allocation index, or -1 - k for extras[k]
        maps: dict[int, int] = {}  # address -> k for extras[k]
        setdefault, pop = blocks.setdefault, blocks.pop
        total = peak = peak_index = 0
        heap_kinds, free, failed = KIND_MMAP, OP_FREE, OP_FAILED  # locals: this loop runs once per event
        for i, op, addr in zip(range(n), ops, addrs, strict=False):
            if op < heap_kinds:
                old = setdefault(addr, i)
                if old != i:  # a missed free (e.g. freed by code that bypassed the hooks)
                    blocks[addr] = i
                    total -= self._release(old, i, sizes, end, longs, extras)
                total += sizes[i]
                if total > peak:
                    peak = total
                    peak_index = i + 1
            elif op == free:
                old = pop(addr, n)  # n: no block there
                if old != n:
                    if old >= 0:
                        end[old] = i
                        total -= sizes[old]
                        if i - old >= short:
                            longs.append(old)
                    else:
                        total -= self._release(old, i, sizes, end, longs, extras)
            elif op != failed:  # OP_FAILED changes nothing live
                total += self._other(capture, i, op, blocks, maps, extras, sizes, end, longs)
                if total > peak:
                    peak = total
                    peak_index = i + 1
        for index in blocks.values():
            if index >= 0:
                end[index] = n
                if n - index >= short:
                    longs.append(index)
        longs.sort()
        self.end = end
        self.longs = longs
        self.long_ends = array("q", [end[i] for i in longs])
        self.extras = extras
        self.peak = peak
        self.peak_index = peak_index  # events replayed when the peak was first reached

    def _release(
        self, old: int, i: int, sizes: array[int], end: array[int], longs: list[int], extras: list[list[int]]
    ) -> int:
        if old >= 0:
            end[old] = i
            if i - old >= self.SHORT:
                longs.append(old)
            return sizes[old]
        extra = extras[-1 - old]
        extra[1] = i
        return extra[2]

    def _other(
        self,
        capture: Capture,
        i: int,
        op: int,
        blocks: dict[int, int],
        maps: dict[int, int],
        extras: list[list[int]],
        sizes: array[int],
        end: array[int],
        longs: list[int],
    ) -> int:
        """Mappings and revived blocks; returns the change of live bytes."""
        ev = capture.events
        n = len(ev)
        addr = ev.address[i]
        if op in (KIND_MMAP, KIND_MMAP_INTERP):
            change = -_unmap(maps, extras, addr, ev.size[i], i, n)  # a new mapping replaces what was there
            maps[addr] = len(extras)
            extras.append([i, n, ev.size[i], ev.stack[i], op, i, ev.time_ms[i]])
            return change + ev.size[i]
        if op == OP_MUNMAP:
            return -_unmap(maps, extras, addr, ev.size[i], i, n)
        if op == OP_RESTORE:
            j = _find_freed_block(capture, i)
            if j is None:
                return 0
            change = 0
            old = blocks.get(addr)
            if old is not None:
                change -= self._release(old, i, sizes, end, longs, extras)
            blocks[addr] = -1 - len(extras)
            extras.append([i, n, ev.size[j], ev.stack[j], ev.op[j], j, ev.time_ms[j]])
            return change + ev.size[j]
        return 0

    def live_heap(self, at: int, since: int = 0) -> list[int]:
        """Heap allocations made in events [since, at) and still live after event at - 1, in event order."""
        end, short = self.end, self.SHORT
        lo = bisect.bisect_left(self.longs, since)
        hi = bisect.bisect_left(self.longs, at)
        found = list(compress(self.longs[lo:hi], map(at.__le__, self.long_ends[lo:hi])))
        first = max(since, at - short)
        recent = compress(range(first, at), map(at.__le__, end[first:at]))
        found += [i for i in recent if end[i] - i < short]  # the others are in `longs`
        return found

    def live_extras(self, at: int, since: int = 0) -> list[list[int]]:
        return [x for x in self.extras if x[0] < at <= x[1] and x[5] >= since]

    def groups(self, at: int, stacks: Stacks, since: int = 0) -> tuple[StackGroup, ...]:
        """What was live after event at - 1 (and allocated at or after `since`), grouped by stack."""
        ev = self.capture.events
        sizes, sids, times = ev.size, ev.stack, ev.time_ms
        acc: dict[tuple[int, bool], list[int]] = {}
        for k in self.live_heap(at, since):
            key = (sids[k], False)
            ms = times[k]
            entry = acc.get(key)
            if entry is None:
                acc[key] = [sizes[k], 1, ms, ms]
            else:
                entry[0] += sizes[k]
                entry[1] += 1
                if ms < entry[2]:
                    entry[2] = ms
                elif ms > entry[3]:
                    entry[3] = ms
        for _start, _end, size, stack, kind, _origin, ms in self.live_extras(at, since):
            key = (stack, kind == KIND_MMAP_INTERP)
            entry = acc.get(key)
            if entry is None:
                acc[key] = [size, 1, ms, ms]
            else:
                entry[0] += size
                entry[1] += 1
                entry[2] = min(entry[2], ms)
                entry[3] = max(entry[3], ms)
        groups = [
            StackGroup(stack, stacks.get(stack, ()), b, c, first, last, interp)
            for (stack, interp), (b, c, first, last) in acc.items()
        ]
        groups.sort(key=lambda g: (-g.bytes, g.stack, g.interpreter))
        return tuple(groups)


def _unmap(maps: dict[int, int], extras: list[list[int]], addr: int, length: int, i: int, n: int) -> int:
    """Release [addr, addr+length) of the mappings at event i; pieces outside the range live on as new
    extras. Returns the bytes released."""
    stop = addr + length
    exact = maps.get(addr)
    candidates = [addr] if exact is not None and extras[exact][2] <= length else list(maps)
    released = 0
    for start in candidates:
        k = maps[start]
        extra = extras[k]
        size = extra[2]
        if start + size <= addr or start >= stop:
            continue
        del maps[start]
        extra[1] = i
        released += size
        if start < addr:  # keep what lies outside the unmapped range
            maps[start] = len(extras)
            extras.append([i, n, addr - start, *extra[3:]])
            released -= addr - start
        if start + size > stop:
            maps[stop] = len(extras)
            extras.append([i, n, start + size - stop, *extra[3:]])
            released -= start + size - stop
    return released


def _find_freed_block(capture: Capture, restore_index: int) -> int | None:
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
            return j
    return None


def _cut_index(capture: Capture, cut: Cut) -> tuple[int, str, int]:
    if cut == "finalizing":
        for mark in capture.marks:
            if mark.label == "python-finalizing":
                return mark.event_index, "python-finalizing", mark.time_ms
    label = "end" if capture.complete else "cut"
    return len(capture.events), label, capture.duration_ms


def _report(label: str, cut_ms: int, groups: tuple[StackGroup, ...]) -> LeakReport:
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


# ---- the views ----


def leaks(
    capture: Capture, stacks: Stacks, *, cut: Cut = "finalizing", history: HeapHistory | None = None
) -> LeakReport:
    """What was allocated and not freed by the cut, grouped by stack.

    The default cut is the moment the interpreter began finalising (memory released only by the
    interpreter's teardown was kept by the program all along); "end" uses the last record.
    """
    stop, label, cut_ms = _cut_index(capture, cut)
    return _report(label, cut_ms, (history or HeapHistory(capture)).groups(stop, stacks))


def leaks_between(
    capture: Capture, stacks: Stacks, start: Mark, stop: Mark, *, history: HeapHistory | None = None
) -> LeakReport:
    """What was allocated after `start` and still live at `stop` (e.g. the target's own code: the marks
    target-start and target-end), as a LeakReport cut at `stop`."""
    return _report(stop.label, stop.time_ms, heap_diff(capture, stacks, start, stop, history=history))


def high_water_mark(capture: Capture, stacks: Stacks, *, history: HeapHistory | None = None) -> HighWater:
    """The most bytes live at once (heap blocks and anonymous mappings) and what was live then."""
    history = history or HeapHistory(capture)
    at = history.peak_index
    time_ms = capture.events.time_ms[at - 1] if at else 0
    return HighWater(history.peak, time_ms, at, history.groups(at, stacks))


def heap_diff(
    capture: Capture,
    stacks: Stacks,
    start: int | Mark,
    stop: int | Mark,
    *,
    history: HeapHistory | None = None,
) -> tuple[StackGroup, ...]:
    """What was allocated after `start` and is still live at `stop`, grouped by stack, biggest first.

    A moment is a time in ms since the target started (events of that millisecond count as before it),
    or a Mark, which is exact to the event.
    """
    first, last = _index_at(capture, start), _index_at(capture, stop)
    return (history or HeapHistory(capture)).groups(last, stacks, since=min(first, last))


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
    for i in _positions(ev.op, _FAILED_OPS):
        kind = ev.address[i]
        name = KIND_NAMES[kind] if 0 <= kind < KIND_COUNT else f"kind {kind}"
        out.append(FailedAllocation(ev.time_ms[i], ev.size[i], name, ev.thread[i], stacks.get(ev.stack[i], ())))
    return tuple(out)


_ARENA_OPS = re.compile(bytes((ord("["), KIND_MMAP_INTERP, OP_MUNMAP, ord("]"))))
_FAILED_OPS = re.compile(bytes((ord("["), OP_FAILED, ord("]"))))


def _positions(ops: array[int], pattern: re.Pattern[bytes]) -> list[int]:
    """Indices of the events whose operation matches: a scan of the bytes, not of Python ints."""
    return [m.start() for m in pattern.finditer(ops.tobytes())]


def arena_growth(capture: Capture, *, cut: Cut = "finalizing") -> ArenaGrowth:
    """The interpreter's own mappings up to the cut (as for leaks), reported apart from the program's."""
    ev = capture.events
    stop, _, _ = _cut_index(capture, cut)
    live: dict[int, int] = {}
    total = peak = 0
    mapped = unmapped = 0
    start_bytes: int | None = None
    for i in _positions(ev.op[:stop], _ARENA_OPS):
        op = ev.op[i]
        if op == KIND_MMAP_INTERP:
            live[ev.address[i]] = ev.size[i]
            total += ev.size[i]
            mapped += 1
            peak = max(peak, total)
            if start_bytes is None:
                start_bytes = 0
        else:
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
    history: HeapHistory | None = None,
) -> Timeline:
    """Live bytes per site at `points` evenly spaced times up to the cut (as for leaks); sites named by
    `site_of` (default: the innermost Python frame, else the innermost native function), the
    interpreter's arenas as one site of their own (ARENA_SITE)."""
    history = history or HeapHistory(capture)
    name_of = site_of or default_site
    # sites numbered once per stack, so the loops below index lists instead of hashing names
    names: list[str] = [ARENA_SITE]  # site 0: the interpreter's own mappings, whoever triggered them
    index_of_name: dict[str, int] = {ARENA_SITE: 0}
    max_stack = max(capture.stacks, default=0)
    site_of_stack = [0] * (max_stack + 1)
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
    # sample k: the state after the events of [0, edges[k]): those up to bounds[k] ms, before the cut
    edges = [min(stop, bisect.bisect_right(ev.time_ms, bound, 0, stop)) for bound in bounds]
    # blocks that lived long, mappings and revived blocks: added to the samples where they are live
    changes: list[list[tuple[int, int]]] = [[] for _ in range(points + 1)]

    def lived(start: int, end: int, site: int, size: int) -> None:
        first = bisect.bisect_right(edges, start)
        last = bisect.bisect_right(edges, end)  # the first sample where it is gone
        if first < last:
            changes[first].append((site, size))
            changes[last].append((site, -size))

    for start, end, size, stack, kind, _origin, _ms in history.extras:
        lived(start, end, 0 if kind == KIND_MMAP_INTERP else site_of_stack[stack], size)
    sizes, sids, ends, short = ev.size, ev.stack, history.end, history.SHORT
    for i in history.longs[: bisect.bisect_left(history.longs, stop)]:
        lived(i, ends[i], site_of_stack[sids[i]], sizes[i])
    per_site = [0] * len(names)
    samples: list[list[int]] = []
    totals: list[int] = []
    total = 0
    for k, edge in enumerate(edges):
        for site, size in changes[k]:
            per_site[site] += size
            total += size
        sample = per_site.copy()
        at_edge = total
        # short-lived blocks live at this edge: born among the last `short` events before it
        first = max(0, edge - short)
        for i in compress(range(first, edge), map(edge.__le__, ends[first:edge])):
            if ends[i] - i < short:
                sample[site_of_stack[sids[i]]] += sizes[i]
                at_edge += sizes[i]
        samples.append(sample)
        totals.append(at_edge)
    final = samples[-1] if samples else [0] * len(names)
    peaks = [max(column) for column in zip(*samples, strict=True)] if samples else [0] * len(names)
    order = sorted(range(len(names)), key=lambda k: (-final[k], -peaks[k], names[k]))
    chosen = [k for k in order if peaks[k] > 0][:top]
    series = tuple(SiteSeries(names[k], tuple(sample[k] for sample in samples)) for k in chosen)
    return Timeline(tuple(bounds), tuple(totals), series)


STEADY_SHARE = 0.5  # a site grew in at least this share of the timeline's steps after it first held memory
STILL_RISING = 0.15  # ... and its last third still added this share of its growth (a filled cache does not)


def site_shape(times_ms: Sequence[int], values: Sequence[int]) -> tuple[float, str, float] | None:
    """(share of steps in which the site grew, "steady" or "one-off", rate in bytes/s) over a timeline;
    None when the site held memory for too few steps to tell.

    Steady: it grew in most steps after it first held memory, ends near its highest, was still rising in
    the last third, and its values rise with time more surely than chance (sites.RISE_Z); a cache that
    filled and then churns goes up in half of its steps too, but adds nothing in the end.
    """
    first = next((i for i, v in enumerate(values) if v > 0), len(values))
    steps = list(itertools.pairwise(values[first:]))
    if len(steps) < 4:
        return None
    grew = sum(1 for a, b in steps if b > a) / len(steps)
    span_s = max((times_ms[-1] - times_ms[first]) / 1000, 1e-3)
    growth = values[-1] - values[first]
    third = first + (len(values) - first) * 2 // 3
    late = values[-1] - values[third]
    # ends near its level of the last third (not freed at the end); a momentary double, the old and the new
    # copy of an array replaced by a bigger one, is not the level
    tail = sorted(values[third:])
    kept = values[-1] >= 0.9 * tail[len(tail) // 2]
    # ... and rose more surely than chance (a site churning at a level rises in half of many steps)
    sure = rise_z(values[first:]) >= RISE_Z
    steady = grew >= STEADY_SHARE and kept and growth > 0 and late >= STILL_RISING * growth and sure
    return grew, "steady" if steady else "one-off", growth / span_s


def retained_growth(values: Sequence[int]) -> int:
    """What a site retained over time: its growth after it first held memory. A buffer a library maps once
    at import is as big at its first sample as at its last, and retains nothing over the run."""
    return values[-1] - next((v for v in values if v > 0), 0) if values else 0


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
    visible: int = 0  # of `bytes`, what went through an allocator tracemalloc hooks (same run, same site)


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
        # an allocation function of those families; not any PyObject_ function (_PyObject_MakeTpCall is the
        # call into a C extension whose own malloc tracemalloc does not see)
        if name.startswith(_TRACEMALLOC_VISIBLE) and any(w in name for w in _ALLOCATING_WORDS):
            return True
    return False


def own_python_frames(frames: Sequence[StackFrame], inherited: Sequence[tuple[str, int]]) -> list[StackFrame]:
    """A stack's Python frames, newest first; in a forked child only those of its own work (sites.own_frames)."""
    python = [f for f in frames if f.kind == "python"]
    if inherited:
        python = python[: own_frames([(f.file, f.line) for f in python], inherited)]
    return python


def suspects_from_leaks(
    report: LeakReport,
    *,
    pid: int,
    is_user_file: Callable[[str], bool],
    limit: int = 20,
    min_bytes: int = 1,
    source_line: Callable[[str, int], str] | None = None,
    inherited: Sequence[tuple[str, int]] = (),
) -> list[Suspect]:
    """Leaks as ranked Suspects, each attributed to the innermost Python frame in the user's own code
    (else the innermost Python frame, else the innermost native function). In a forked child, only the
    Python frames of its own work count (`inherited`: the stack it was forked on, sites.own_frames)."""
    merged: dict[tuple[str, int, str], _SuspectTotal] = {}
    for group in report.groups:
        frames = group.frames
        python = own_python_frames(frames, inherited)
        user = next((f for f in python if is_user_file(f.file)), None)
        where = user or (python[0] if python else None)
        if where is not None:
            key = (where.file, where.line, where.function)
        elif frames:
            key = (frames[0].module or "<native>", 0, frames[0].function)
        else:
            key = ("<unknown>", 0, "<no stack>")
        entry = merged.get(key)
        seen = group.bytes if visible_to_tracemalloc(frames) else 0
        if entry is None:
            merged[key] = _SuspectTotal(group.bytes, group.count, group, seen)
        else:
            entry.bytes += group.bytes
            entry.count += group.count
            entry.visible += seen
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
                tracemalloc_bytes=total.visible,
                native_bytes=total.bytes,
                library=not (line and is_user_file(file)),
            )
        )
    return out
