"""A long-lived worker thread keeps every row it handles in a threading.local that is never cleared."""

import threading
import time

state = threading.local()


class Row:
    def __init__(self, number):
        self.number = number
        self.payload = "p" * 400


def handle(number):
    if not hasattr(state, "rows"):
        state.rows = []
    state.rows.append(Row(number))  # expect: grows


def worker(stop):
    number = 0
    while not stop.is_set():
        for _ in range(40):
            handle(number)
            number += 1
        time.sleep(0.02)


if __name__ == "__main__":
    stop = threading.Event()
    pool = threading.Thread(target=worker, args=(stop,), name="pool-worker")
    pool.start()
    time.sleep(5)
    stop.set()
    pool.join()
