"""A bounded cache that fills up and then stays the same size: growth, then a plateau, not a leak.

What the report should find: `no-leak`, pattern `plateau`.

Run: python examples/bounded_cache.py [SECONDS]
"""

import sys
import time
from collections import OrderedDict

MAX_ENTRIES = 2000


class LRUCache:
    def __init__(self, size):
        self.size = size
        self.entries = OrderedDict()

    def get(self, key, compute):
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = compute(key)
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


def render(key):
    return f"<div>{key}</div>" * 400


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    cache = LRUCache(MAX_ENTRIES)
    deadline = time.monotonic() + seconds
    key = 0
    while time.monotonic() < deadline:
        for _ in range(25):
            cache.get(key, render)
            key += 1
        time.sleep(0.02)
    print(f"{key} renders, {len(cache.entries)} cached")


if __name__ == "__main__":
    main()
