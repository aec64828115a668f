"""A metrics window: the last 20,000 samples in a collections.deque(maxlen=...), summarised now and then.

The deque fills in the first seconds and then drops its oldest sample for each new one: a plateau.
"""
# accuracy.verdict: no-leak

import time
from collections import deque

WINDOW = deque(maxlen=20_000)


def record(i):
    WINDOW.append({"request": i, "latency_ms": (i * 37) % 250, "route": f"/api/items/{i % 500}"})


def main():
    for i in range(60_000):
        record(i)
        if i % 200 == 0:
            p99 = sorted(s["latency_ms"] for s in WINDOW)[int(len(WINDOW) * 0.99) - 1]
            time.sleep(0.02)
    print(f"{len(WINDOW)} samples, p99 {p99} ms")


if __name__ == "__main__":
    main()
