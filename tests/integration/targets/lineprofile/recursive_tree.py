"""A recursive builder whose nodes are kept in a module-level registry.

The line that allocates what is kept is marked `suspect`; the recursive call is not (its callees' lines
are charged to themselves).
"""

import sys

registry = []


def build(depth):
    if depth == 0:
        return []
    node = [bytearray(2048)]  # expect: suspect
    registry.append(node)
    node.append(build(depth - 1))
    return node


def main():
    trees = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for _ in range(trees):
        build(6)
    print(f"{len(registry)} nodes")


if __name__ == "__main__":
    main()
