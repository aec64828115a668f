"""Deep recursion that allocates at every level, while the heap is scanned."""

import sys

sys.setrecursionlimit(30000)


def down(n, acc):
    local = [n] * 5
    if n == 0:
        return sum(len(a) for a in acc)
    acc.append(local)
    return down(n - 1, acc)


total = 0
for _ in range(80):
    total += down(12000, [])
    [str(i) for i in range(50000)]
print(total)
