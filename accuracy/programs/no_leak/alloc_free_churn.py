"""Allocates a lot and frees all of it: every batch builds dicts of lists of objects and drops them."""
# accuracy.verdict: no-leak

import time


class Row:
    __slots__ = ("key", "values")

    def __init__(self, key, values):
        self.key = key
        self.values = values


def batch(n):
    table = {}
    for k in range(4000):
        table.setdefault(k % 100, []).append(Row(f"{n}-{k}", [k, k + 1, k + 2]))
    return sum(len(rows) for rows in table.values())


def main():
    total = 0
    for n in range(350):
        total += batch(n)
        time.sleep(0.01)
    print(total)


if __name__ == "__main__":
    main()
