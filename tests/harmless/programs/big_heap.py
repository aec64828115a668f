"""Five million live objects the collector tracks, then a little work on them."""

import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
heap = [(i, None) for i in range(n)]
total = 0
for _ in range(3):
    total += sum(t[0] for t in heap[::1000])
    more = [[i] for i in range(200000)]
    del more
print(len(heap), total)
