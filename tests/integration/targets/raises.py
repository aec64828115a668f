"""Grows a little, then raises an uncaught exception."""

import time

kept = []
for _ in range(30):
    kept.append(bytearray(200_000))
    time.sleep(0.05)
raise ValueError("bad record 42")
