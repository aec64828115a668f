"""Per-thread memos: each worker of a ThreadPoolExecutor keeps every string it made in a threading.local."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

memo = threading.local()


def render(n):
    cache = getattr(memo, "cache", None)
    if cache is None:
        cache = memo.cache = {}
    cache[n] = f"rendered page {n} " * 20  # expect: grows
    return len(cache[n])


if __name__ == "__main__":
    with ThreadPoolExecutor(max_workers=4) as pool:
        for batch in range(50):
            list(pool.map(render, range(batch * 200, (batch + 1) * 200)))
            time.sleep(0.08)
    print("done")
