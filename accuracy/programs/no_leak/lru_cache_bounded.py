"""A page renderer behind functools.lru_cache(maxsize=1024): a working set of 3,000 pages cycles through it.

The cache fills in about a second and then evicts as much as it adds: bounded growth, not a leak.
"""
# accuracy.verdict: no-leak

import functools
import time


@functools.lru_cache(maxsize=1024)
def render(page):
    return f"<p>page {page}</p>" * 300


def main():
    for request in range(24_000):
        render((request * 7) % 3000)
        if request % 40 == 0:
            time.sleep(0.01)
    print(render.cache_info())


if __name__ == "__main__":
    main()
