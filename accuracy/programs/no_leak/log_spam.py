"""A worker that logs several lines per item through the logging module to stderr: noisy, not leaky."""
# accuracy.verdict: no-leak

import logging
import time

log = logging.getLogger("worker")


def process(i):
    log.info("item %d: fetched %d bytes from %s", i, i * 13 % 4096, f"shard-{i % 8}")
    log.debug("item %d: details that are filtered out", i)
    log.warning("item %d: slow path taken (%.1f ms)", i, (i % 100) / 3)
    return i % 7


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    total = 0
    for i in range(40_000):
        total += process(i)
        if i % 400 == 0:
            time.sleep(0.03)
    print(total)


if __name__ == "__main__":
    main()
