"""Thousands of asyncio tasks that sleep, compute and finish; the loop drops finished tasks."""

import asyncio


async def job(i):
    await asyncio.sleep((i % 17) / 1000)
    return sum(range(i % 300))


async def main():
    total = 0
    for _ in range(30):
        results = await asyncio.gather(*(job(i) for i in range(3000)))
        total += sum(results)
    print(total)


asyncio.run(main())
