"""Leaves with os._exit(7): no atexit handlers run, no flushing beyond what it did itself."""

import atexit
import os
import sys

atexit.register(print, "atexit must not run")
data = [str(i) for i in range(300000)]
print("before exit", len(data))
sys.stdout.flush()
with open("written.txt", "w") as handle:
    handle.write("os_exit wrote this\n")
os._exit(7)
