"""An asyncio server loop that keeps strong references to its background tasks in a set, and drops each
task from the set when it finishes (the pattern the asyncio docs recommend): a flat line."""
# accuracy.verdict: no-leak

import asyncio

BACKGROUND = set()


async def handle(i):
    payload = [f"chunk {i}:{k}" for k in range(200)]
    await asyncio.sleep(0.05)
    return len(payload)


async def main():
    for i in range(5000):
        task = asyncio.create_task(handle(i))
        BACKGROUND.add(task)
        task.add_done_callback(BACKGROUND.discard)
        if i % 20 == 0:
            await asyncio.sleep(0.02)
    await asyncio.gather(*BACKGROUND)
    print(f"{len(BACKGROUND)} tasks left")


if __name__ == "__main__":
    asyncio.run(main())
