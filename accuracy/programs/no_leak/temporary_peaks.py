"""A batch job that builds a large temporary list every half second, reduces it and drops it.

Memory spikes and comes back down (a sawtooth around a flat baseline): temporary peaks, not a leak.
"""
# accuracy.verdict: no-leak

import time


def crunch(batch):
    rows = [(batch, k, float(k) * 0.5, f"row-{k}") for k in range(300_000)]
    total = sum(r[2] for r in rows)
    del rows
    return total


def main():
    grand = 0.0
    for batch in range(12):
        grand += crunch(batch)
        time.sleep(0.35)
    print(f"total {grand:.0f}")


if __name__ == "__main__":
    main()
