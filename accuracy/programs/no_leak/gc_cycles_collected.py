"""Every request builds a parent/child reference cycle and drops it; the garbage collector (left enabled)
frees the cycles: a sawtooth at most, never a leak."""
# accuracy.verdict: no-leak

import time


class Node:
    def __init__(self, name):
        self.name = name
        self.children = []
        self.parent = None
        self.payload = bytearray(512)


def request(i):
    root = Node(f"req-{i}")
    for k in range(8):
        child = Node(f"req-{i}-{k}")
        child.parent = root
        root.children.append(child)
    return len(root.children)


def main():
    total = 0
    for i in range(30_000):
        total += request(i)
        if i % 100 == 0:
            time.sleep(0.02)
    print(total)


if __name__ == "__main__":
    main()
