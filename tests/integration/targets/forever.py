"""A service that never ends and leaks per request; stopped by --duration."""

import time

sessions = {}
n = 0
while True:
    n += 1
    sessions[n] = "x" * 20_000  # expect: suspect
    time.sleep(0.005)
