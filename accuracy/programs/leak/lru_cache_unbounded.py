"""functools.lru_cache(maxsize=None) on a function whose argument is new at every call: the cache only grows."""
# accuracy.verdict: leak
# accuracy.root: lru_cache | __main__.lookup

import functools
import time


@functools.lru_cache(maxsize=None)  # noqa: UP033 -- the leak under test
def lookup(order_id):
    return f"order {order_id}: " + "item " * 300  # expect: suspect


def main():
    for order_id in range(7000):
        lookup(order_id)
        if order_id % 25 == 0:
            time.sleep(0.02)
    print(lookup.cache_info())


if __name__ == "__main__":
    main()
