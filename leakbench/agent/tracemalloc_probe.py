"""Probe: tracemalloc started before the target's code, snapshots dumped at an interval and at the end.

Snapshots are dumped whole (loadable with `tracemalloc.Snapshot.load`); the launcher filters the agent's
own traces out when it analyses them, so the target pays only for taking and writing each snapshot.

With a `window` (seconds), tracemalloc runs in bursts for long runs: off for the `warmup`, then on for a
window (snapshots at the interval, the first and last marking its ends), off again, and on for the next
window `every` seconds after the last began (or never again, with every = 0). Outside the windows the
target runs at full speed. Each snapshot says which window it belongs to: traces restart with each.
"""

from __future__ import annotations

import os
import time
import tracemalloc

HEAP_EVERY_S = 0.5


class TracemallocProbe:
    def __init__(self, agent, options):
        self.agent = agent
        self.interval = float(options.get("interval", 1.0))
        self.frames = int(options.get("frames", 25))
        self.index = 0
        self.next_at = 0.0
        self.next_heap_at = 0.0
        self.ended = False  # the last snapshot has been taken
        self.started_here = not tracemalloc.is_tracing()  # the target may trace on its own
        # Bursts only when tracemalloc is leakbench's to stop: a target that traces itself keeps it on.
        self.window = float(options.get("window", 0.0)) if self.started_here else 0.0
        self.every = float(options.get("every", 0.0))
        self.window_index = None  # the window being traced, counted from 0 (None: no windows)
        self.window_ends = 0.0
        self.next_window_at = time.time() + float(options.get("warmup", 0.0))
        if self.window > 0:
            return  # the first window opens at the first tick after the warm-up
        if self.started_here:
            tracemalloc.start(self.frames)
        self.snapshot("start")

    def snapshot(self, reason):
        began = time.time()
        snap = tracemalloc.take_snapshot()
        path = os.path.join(self.agent.artifact_dir(), f"snapshot-{self.index:04d}.tracemalloc")
        snap.dump(path)
        current, peak = tracemalloc.get_traced_memory()
        cost = time.time() - began
        self.agent.emit(
            "snapshot",
            index=self.index,
            path=path,
            reason=reason,
            taken_at=began,
            cost_s=round(cost, 4),
            window=self.window_index,
            traced_bytes=current,
            traced_peak_bytes=peak,
        )
        self.index += 1
        # A snapshot of a large heap is slow: space them so that they cost at most a fifth of the run.
        self.next_at = time.time() + max(self.interval, 4 * cost)

    def tick(self, now):
        if self.window > 0:
            if not tracemalloc.is_tracing():
                if now >= self.next_window_at:
                    self._open_window(now)
                return
            if now >= self.window_ends:
                self.snapshot("window-end")
                tracemalloc.stop()
                self.agent.emit("tracemalloc-window", index=self.window_index, state="closed")
                return
        if now >= self.next_heap_at:
            current, peak = tracemalloc.get_traced_memory()
            # tracemalloc's own memory sits in the RSS too; the launcher takes it out of the trend.
            overhead = tracemalloc.get_tracemalloc_memory()
            self.agent.emit("heap", traced_bytes=current, traced_peak_bytes=peak, overhead_bytes=overhead)
            self.next_heap_at = now + HEAP_EVERY_S
        if now >= self.next_at:
            self.snapshot("interval")

    def _open_window(self, now):
        self.window_index = 0 if self.window_index is None else self.window_index + 1
        self.window_ends = now + self.window
        self.next_window_at = now + self.every if self.every > 0 else float("inf")
        tracemalloc.start(self.frames)
        self.agent.emit("tracemalloc-window", index=self.window_index, state="open", until=self.window_ends)
        self.snapshot("window-start")

    def target_end(self):
        # The last snapshot of the target's work, taken when its code returned and marked so: what the
        # interpreter frees or makes while it shuts down (atexit handlers, module teardown) is not read.
        if tracemalloc.is_tracing() and not self.ended:
            self.ended = True
            self.snapshot("final:target-end")

    def final(self, reason):
        if tracemalloc.is_tracing() and not self.ended:
            self.ended = True
            self.snapshot("final:" + reason)

    def detach(self):
        # leakbench attached to a running process: tracing costs it time and memory, and it did not ask
        if self.started_here and tracemalloc.is_tracing():
            tracemalloc.stop()

    def after_fork(self):
        self.ended = False
        self.index = 0
        self.next_at = 0.0
        if self.window > 0 and not tracemalloc.is_tracing():
            return  # the child's windows open on its own clock, as the parent's
        self.snapshot("window-start" if self.window > 0 else "start")


def start(agent, options):
    return TracemallocProbe(agent, options)
