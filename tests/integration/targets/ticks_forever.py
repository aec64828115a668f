"""Prints a tick now and then and never ends; with an argument it ignores SIGINT, as some services do."""

import signal
import sys
import time

if len(sys.argv) > 1:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
x = []
while True:
    x.append("y" * 100)
    if len(x) % 200 == 0:
        print("tick", flush=True)
    time.sleep(0.005)
