"""An lru_cache(maxsize=None) whose function returns a new string for every new argument: the cache's dict
holds only strings, which the collector does not track (nor the dict that holds them)."""

import functools
import time


@functools.lru_cache(maxsize=None)  # noqa: UP033 -- the leak under test
def lookup(order_id):
    return f"order {order_id}: " + "item " * 100  # expect: grows


if __name__ == "__main__":
    for order_id in range(3000):
        lookup(order_id)
        if order_id % 100 == 0:
            time.sleep(0.1)
