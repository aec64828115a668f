"""Events are buffered in a list and flushed (written out and cleared) every 2,000 events: a sawtooth."""
# accuracy.verdict: no-leak

import os
import time

PENDING = []


def flush(sink):
    sink.write("".join(PENDING))
    PENDING.clear()


def main():
    with open(os.devnull, "w") as sink:
        for i in range(60_000):
            PENDING.append(f"event {i} user={i % 300} action=click target=/item/{i % 5000}\n")
            if len(PENDING) >= 2000:
                flush(sink)
            if i % 100 == 0:
                time.sleep(0.01)
    print("done")


if __name__ == "__main__":
    main()
