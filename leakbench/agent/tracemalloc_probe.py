"""Probe: tracemalloc started before the target's code, snapshots dumped at an interval and at the end.

Snapshots are dumped whole (loadable with `tracemalloc.Snapshot.load`); the launcher filters the agent's
own traces out when it analyses them, so the target pays only for taking and writing each snapshot.
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
            traced_bytes=current,
            traced_peak_bytes=peak,
        )
        self.index += 1
        # A snapshot of a large heap is slow: space them so that they cost at most a fifth of the run.
        self.next_at = time.time() + max(self.interval, 4 * cost)

    def tick(self, now):
        if now >= self.next_heap_at:
            current, peak = tracemalloc.get_traced_memory()
            # tracemalloc's own memory sits in the RSS too; the launcher takes it out of the trend.
            overhead = tracemalloc.get_tracemalloc_memory()
            self.agent.emit("heap", traced_bytes=current, traced_peak_bytes=peak, overhead_bytes=overhead)
            self.next_heap_at = now + HEAP_EVERY_S
        if now >= self.next_at:
            self.snapshot("interval")

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
        self.snapshot("start")


def start(agent, options):
    return TracemallocProbe(agent, options)
