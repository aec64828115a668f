"""A worker thread keeps every record it makes in a local list; the leak is gone when the thread ends."""

import threading
import time


class Record:
    def __init__(self, number):
        self.number = number
        self.body = "r" * 500


def collect(seconds):
    records = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        records.extend(Record(n) for n in range(50))
        time.sleep(0.05)
    print("collected", len(records))


if __name__ == "__main__":
    worker = threading.Thread(target=collect, args=(4.0,), name="collector")
    worker.start()
    worker.join()
    time.sleep(1.5)  # the records are gone by now: the chain must have been taken while the thread ran
