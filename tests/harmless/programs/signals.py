"""Signal handlers of its own: SIGUSR1, SIGUSR2 and SIGALRM, each counted exactly."""

import os
import signal
import time

counts = {"usr1": 0, "usr2": 0, "alrm": 0}


def on(name):
    def handler(signum, frame):
        counts[name] += 1

    return handler


signal.signal(signal.SIGUSR1, on("usr1"))
signal.signal(signal.SIGUSR2, on("usr2"))
signal.signal(signal.SIGALRM, on("alrm"))
for i in range(400):
    os.kill(os.getpid(), signal.SIGUSR1)
    if i % 4 == 0:
        os.kill(os.getpid(), signal.SIGUSR2)
    if i % 100 == 0:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.05)  # the alarm arrives during the sleep; the sleep is resumed as PEP 475 says
    [str(j) for j in range(2000)]
print(counts)
