"""A program that turns the garbage collector off for speed and builds a parent/child cycle per request:
each dropped tree is unreachable but never freed."""
# accuracy.verdict: leak
# accuracy.root: reference cycles

import gc
import time


class Node:
    def __init__(self, name):
        self.name = name
        self.children = []
        self.parent = None
        self.payload = bytearray(512)  # expect: suspect


def request(i):
    root = Node(f"req-{i}")
    for k in range(6):
        child = Node(f"req-{i}-{k}")
        child.parent = root
        root.children.append(child)
    return len(root.children)


def main():
    gc.disable()
    total = 0
    for i in range(7000):
        total += request(i)
        if i % 30 == 0:
            time.sleep(0.02)
    print(total)


if __name__ == "__main__":
    main()
