"""Probe: marks the preloaded native tracker's capture at the target's start and end.

The tracker itself is loaded with LD_PRELOAD; this probe only tells it, through its exported
`lbt_mark`, when the target's own code started and returned, so that the launcher can take what was
allocated in between and still live at the end as the run's leaks.
"""

from __future__ import annotations

import ctypes


class NativeProbe:
    def __init__(self, agent, options):
        self.agent = agent
        try:
            process = ctypes.CDLL(None)
            self.mark = process.lbt_mark
            self.flush = process.lbt_flush
        except (OSError, AttributeError):
            self.mark = self.flush = None
            agent.emit("native-missing")
            return
        self.mark.argtypes = [ctypes.c_char_p]
        self.mark(b"target-start")
        agent.emit("native-mark", label="target-start")

    def target_end(self):
        if self.mark is not None:
            self.mark(b"target-end")
            self.agent.emit("native-mark", label="target-end")

    def final(self, reason):
        if self.flush is not None:
            self.flush()

    def after_fork(self):
        if self.mark is not None:
            self.mark(b"target-start")


def start(agent, options):
    return NativeProbe(agent, options)
