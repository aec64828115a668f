"""Builds a case-insensitive header map per request by adding each header to a new CIMultiDict
(the reproducer of multidict issue #1131)."""

import time

from multidict import CIMultiDict


def build(i):
    result = CIMultiDict()
    headers = CIMultiDict({f"X-Any-{k}": f"{i}-{k}" for k in range(10)})  # expect: suspect
    for key, value in headers.items():
        result.add(key, value)  # expect: suspect
    return len(result)


def main():
    total = 0
    for i in range(50_000):
        total += build(i)
        if i % 50 == 0:
            time.sleep(0.004)
    print(total)


if __name__ == "__main__":
    main()
