"""Grows steadily and is then killed with SIGKILL, as the OOM killer would."""

import os
import signal
import time

kept = []
for _ in range(60):
    kept.append(bytearray(500_000))  # expect: suspect
    time.sleep(0.05)
os.kill(os.getpid(), signal.SIGKILL)
