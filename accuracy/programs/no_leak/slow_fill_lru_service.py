"""A service whose bounded lru_cache(maxsize=600) fills over its first ~3 s of requests, then holds.

Each miss renders a page with real work (a few ms of small allocations); the service runs for a fixed
time, so under a slower tracer the cache is still filling when the run ends. Judged on the plain run:
a plateau, not a leak.
"""
# accuracy.verdict: no-leak

import functools
import time

RUN_SECONDS = 7.0


@functools.lru_cache(maxsize=600)
def render(page):
    parts = [f"<td>{page}:{k}</td>" for k in range(18_000)]
    return "".join(parts)[:40_000]


def main():
    started = time.monotonic()
    request = 0
    filled_at = None
    while time.monotonic() - started < RUN_SECONDS:
        render(request % 600)
        request += 1
        if filled_at is None and render.cache_info().currsize == 600:
            filled_at = time.monotonic() - started
        time.sleep(0.001)
    print(f"{request} requests, cache full after {filled_at} s", render.cache_info())


if __name__ == "__main__":
    main()
