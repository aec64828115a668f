"""Parent/child nodes that point at each other, with the collector disabled: every pair stays."""

import gc
import time


class Node:
    def __init__(self, payload):
        self.payload = payload
        self.parent = None
        self.children = []


def build():
    root = Node("r" * 1000)
    child = Node("c" * 1000)
    child.parent = root
    root.children.append(child)
    return root


if __name__ == "__main__":
    gc.disable()
    for _step in range(40):
        for _ in range(50):
            build()  # dropped at once, but the cycle keeps both nodes
        time.sleep(0.1)
    print("done")
