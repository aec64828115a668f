"""Weak references with callbacks, and weakref.finalize: every callback runs exactly once, in order."""

import gc
import weakref

fired = []


class Node:
    pass


refs = []
for round_ in range(150):
    batch = [Node() for _ in range(500)]
    for i, node in enumerate(batch):
        refs.append(weakref.ref(node, lambda r, i=i, round_=round_: fired.append((round_, i))))
        if i % 50 == 0:
            weakref.finalize(node, fired.append, ("final", round_, i))
    del batch, node
    [str(j) for j in range(20000)]
gc.collect()
print(len(fired), fired[:3], fired[-3:])
