"""The parent stays flat; a forked worker keeps every job it handled in a module-level history."""

import multiprocessing as mp
import time

history = []


class Job:
    def __init__(self, number):
        self.number = number
        self.result = "j" * 500


def work(seconds):
    end = time.monotonic() + seconds
    number = 0
    while time.monotonic() < end:
        for _ in range(50):
            history.append(Job(number))
            number += 1
        time.sleep(0.05)


if __name__ == "__main__":
    proc = mp.get_context("fork").Process(target=work, args=(4.0,))
    proc.start()
    proc.join()
    print("worker exit", proc.exitcode, "parent history", len(history))
