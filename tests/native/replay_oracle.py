"""The replay as leakbench did it before HeapHistory: a fresh replay per view, block by block. Kept as
the oracle that the one-pass views must agree with on recorded captures."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from leakbench.analysis.native import (
    ARENA_SITE,
    Cut,
    HighWater,
    LeakReport,
    SiteSeries,
    StackGroup,
    Stacks,
    Timeline,
    default_site,
)
from leakbench.native.capture import (
    KIND_COUNT,
    KIND_MMAP,
    KIND_MMAP_INTERP,
    OP_FREE,
    OP_MUNMAP,
    OP_RESTORE,
    Capture,
    Mark,
)
from leakbench.native.symbolize import StackFrame


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
