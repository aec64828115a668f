"""An lru_cache on a method: `self` is part of every key, so the cache keeps every instance alive."""

import functools
import time


class PriceService:
    def __init__(self, region):
        self.region = region
        self.table = [region] * 500

    @functools.lru_cache(maxsize=None)  # noqa: B019, UP033 (the leak under test)
    def price(self, item):
        return len(self.table) * item


if __name__ == "__main__":
    for step in range(40):
        for region in range(50):
            PriceService(region).price(step)
        time.sleep(0.1)
    print("cached", PriceService.price.cache_info().currsize)
