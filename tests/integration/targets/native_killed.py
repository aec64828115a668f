"""Calls the leaky C extension, then dies by SIGKILL as the OOM killer would kill it."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "native_leak"))
import build

sys.path.insert(0, build.ensure_built())
import leakyext

for _ in range(150):
    leakyext.process(256 * 1024)  # expect: suspect
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
