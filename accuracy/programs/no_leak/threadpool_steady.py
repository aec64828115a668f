"""A ThreadPoolExecutor parses and summarises records in 4 threads; every result is consumed and dropped."""
# accuracy.verdict: no-leak

import json
import time
from concurrent.futures import ThreadPoolExecutor


def summarise(i):
    doc = json.dumps({"id": i, "values": list(range(i % 200, i % 200 + 300)), "name": f"rec-{i}"})
    data = json.loads(doc)
    return sum(data["values"]) // len(data["values"])


def main():
    total = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, 24_000, 400):
            total += sum(pool.map(summarise, range(start, start + 400)))
            time.sleep(0.06)
    print(total)


if __name__ == "__main__":
    main()
