"""Builds an index of 1.5 million small tuples at start-up, then serves lookups from it without growing.

The one big load is not a leak: after it, retained memory stays flat while the work goes on.
"""
# accuracy.verdict: no-leak

import time


def build_index():
    return {n: (n % 97, n % 89) for n in range(1_500_000)}


def main():
    index = build_index()
    hits = 0
    for i in range(4000):
        batch = [index[(i * 7919 + k) % 1_500_000] for k in range(100)]
        hits += sum(a for a, _ in batch)
        if i % 10 == 0:
            time.sleep(0.012)
    print(f"{len(index)} entries, {hits} hits")


if __name__ == "__main__":
    main()
