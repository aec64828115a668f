"""Writes 100 MB to stdout in lines of varying length, unbuffered and buffered."""

import sys

line = "".join(chr(ord("a") + i % 26) for i in range(199)) + "\n"  # 200 bytes
out = sys.stdout
for i in range(500000):
    out.write(line if i % 1000 else f"line {i}\n")
out.flush()
