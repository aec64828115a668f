"""Two multiprocessing pools of one worker each, one started by spawn and one by forkserver; each worker keeps
every buffer it made in a module-level history, at a line of its own. The parent holds nothing."""

import multiprocessing as mp
import time

history = []


def spawned(n):
    for _ in range(100):
        history.append(bytearray(20_000))  # expect: spawn
    time.sleep(0.15)  # each worker lives ~2.5 s: several tracemalloc snapshots
    return len(history)


def forkserved(n):
    for _ in range(100):
        history.append(bytearray(20_000))  # expect: forkserver
    time.sleep(0.15)
    return len(history)


if __name__ == "__main__":
    for method, work in (("spawn", spawned), ("forkserver", forkserved)):
        with mp.get_context(method).Pool(1) as pool:
            kept = pool.map(work, range(16))
        print(method, "worker kept", kept[-1], "buffers")
