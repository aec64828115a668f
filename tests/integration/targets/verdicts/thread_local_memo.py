"""Per-thread memos: each pool thread keeps every response it built in a threading.local() dict.

The strings are not tracked by the garbage collector; the dicts live as long as the pool's threads.
Run: python thread_local_memo.py [SECONDS]
"""

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

_memo = threading.local()


def handle(request):
    seen = getattr(_memo, "seen", None)
    if seen is None:
        seen = _memo.seen = {}
    seen[request] = f"response to {request}: " + "payload " * 300  # expect: suspect
    return len(seen)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    deadline = time.monotonic() + seconds
    start = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        while time.monotonic() < deadline:
            list(pool.map(handle, range(start, start + 300)))
            start += 300
            time.sleep(0.02)
    print("handled", start)


if __name__ == "__main__":
    main()
