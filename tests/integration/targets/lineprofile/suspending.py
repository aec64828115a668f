"""A generator, a coroutine and an async generator, each run 30 times: a call completes when it returns, not
at each yield or await. `once` lines run once per call; `each` lines once per yield."""

import asyncio
import sys


def batches(n):
    rows = []  # expect: once
    for i in range(n):
        rows.append(bytearray(1000))  # expect: each
        yield i


async def fetch(n):
    pages = []  # expect: once
    for _ in range(n):
        await asyncio.sleep(0)
        pages.append(bytearray(1000))  # expect: each
    return len(pages)


async def stream(n):
    seen = []  # expect: once
    for i in range(n):
        await asyncio.sleep(0)
        seen.append(bytearray(1000))  # expect: each
        yield i


async def consume():
    for _ in range(30):
        await fetch(4)
        async for _ in stream(4):
            pass


def main():
    for _ in range(30):
        for _ in batches(4):
            pass
    asyncio.run(consume())
    print("all 30 rounds ran", file=sys.stderr)


if __name__ == "__main__":
    main()
