"""atexit handlers that print, allocate and write a file, then exit code 3 from sys.exit."""

import atexit
import sys

KEEP = []


def first():
    KEEP.extend(str(i) for i in range(100000))
    print("first handler", len(KEEP))


def second():
    with open("atexit.txt", "w") as handle:
        handle.write(f"second handler {len(KEEP)}\n")
    print("second handler")


atexit.register(first)
atexit.register(second)
for _i in range(5):
    KEEP.append([str(j) for j in range(50000)])
print("main done")
sys.exit(3)
