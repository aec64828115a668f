"""A global numpy array grown by ten thousand float64 elements at every call (seed article 003).

What the report should find: a leak of ~78 KiB per iteration; the top suspect is the line in
mem_leaker() that appends to the global array.

Run: python examples/mem_leaker.py [ITERATIONS]
"""

import sys
import time

import numpy as np

data = np.ones(0)


def mem_leaker():
    global data
    data = np.append(data, np.ones(10000))  # expect: suspect


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for _ in range(iterations):
        mem_leaker()
        time.sleep(0.03)
    print(f"{data.size} elements, {data.nbytes // 1024} KiB")


if __name__ == "__main__":
    main()
