"""The main process stays flat; a forked worker leaks (multiprocessing with the fork start method)."""

import multiprocessing as mp
import time


def worker(seconds):
    cache = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        cache.append(b"y" * 100_000)  # expect: suspect
        time.sleep(0.01)


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=worker, args=(4.0,))
    proc.start()
    proc.join()
    print("worker exit", proc.exitcode)
