"""A model with an Iterable[int] field validated in a loop (the reproducer of pydantic issue #9243)."""

import time
from collections.abc import Iterable

from pydantic import BaseModel


class Trace(BaseModel):
    elements: Iterable[int]


def main():
    total = 0
    for i in range(3000):
        for _ in range(40):
            Trace(elements=[1, 2, 3])  # expect: suspect
        total += i
        time.sleep(0.002)
    print(total)


if __name__ == "__main__":
    main()
