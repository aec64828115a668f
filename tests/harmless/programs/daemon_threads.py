"""Daemon threads still allocating when the main thread returns and the interpreter shuts down."""

import threading
import time

stop_seen = []


def spin(n):
    data = []
    while True:
        data.append(str(n) * 10)
        if len(data) > 10000:
            data.clear()


for n in range(4):
    threading.Thread(target=spin, args=(n,), daemon=True).start()
time.sleep(2.5)
print("main done")
