"""A service whose bounded functools.lru_cache fills in about two seconds when run plainly, then stays full.

Not a leak: under a slow profiler the cache may still be filling when the run ends.
Run: python bounded_lru.py [SECONDS]
"""

import functools
import random
import sys
import time

CAPACITY = 2048


@functools.lru_cache(maxsize=CAPACITY)
def render(key):
    items = [f"<li>{key}.{i}</li>" for i in range(1200)]  # many small allocations: slow under tracemalloc
    return "".join(items).encode()  # about 20 KiB per entry


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    served = 0
    while time.monotonic() < deadline:
        for _ in range(10):
            served += len(render(rng.randrange(6000)))
        time.sleep(0.005)
    print("served", served)


if __name__ == "__main__":
    main()
