"""A handler is added to the same logger on every call, and never removed."""

import logging
import time

log = logging.getLogger("orders")
log.setLevel(logging.WARNING)


def process(order):
    log.addHandler(logging.StreamHandler())  # expect: grows
    log.info("processing %s", order)  # below the level: the handlers never write
    return order * 2


def main():
    for order in range(2500):
        process(order)
        time.sleep(0.002)


if __name__ == "__main__":
    main()
