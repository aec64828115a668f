"""Builds tuples and frozensets from generators in a loop, in the main thread and in two others.

CPython builds a tuple from a generator in place and resizes it when the generator runs past its length
hint; the resize refuses a tuple that anything else refers to (gh-127058). A heap scan that keeps a
reference to the half-built tuple while this code runs makes it die with SystemError.
"""

import sys
import threading
import time

KEEP = []


def build(rounds):
    total = 0
    for i in range(rounds):
        t = tuple(j for j in range(50 + i % 7))
        f = frozenset(str(j) for j in range(20 + i % 5))
        total += len(t) + len(f)
        if i % 50 == 0:
            KEEP.append(t)  # some of them stay: a type that grows, so backrefs follows tuples
    return total


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    results = []
    workers = [threading.Thread(target=lambda: results.append(build(20000))) for _ in range(2)]
    for w in workers:
        w.start()
    until = time.monotonic() + seconds
    total = 0
    while time.monotonic() < until:
        total += build(2000)
    for w in workers:
        w.join()
    print("built", sorted(results), "main ok", total > 0, "kept", len(KEEP) > 0)


if __name__ == "__main__":
    main()
