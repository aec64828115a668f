"""An asyncio loop that keeps every background task in a set and never discards finished ones: each done
task keeps its result (a list of chunks) alive."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.BACKGROUND

import asyncio

BACKGROUND = set()


async def handle(i):
    payload = [f"chunk {i}:{k}" for k in range(100)]  # expect: suspect
    await asyncio.sleep(0.01)
    return payload


async def main():
    for i in range(5000):
        task = asyncio.create_task(handle(i))
        BACKGROUND.add(task)
        if i % 20 == 0:
            await asyncio.sleep(0.02)
    await asyncio.gather(*BACKGROUND)
    print(f"{len(BACKGROUND)} tasks kept")


if __name__ == "__main__":
    asyncio.run(main())
