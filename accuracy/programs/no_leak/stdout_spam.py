"""A program that only writes a lot of lines to stdout while doing light work.

Output buffering and the terminal's pipe are not a leak: nothing is retained.
"""
# accuracy.verdict: no-leak

import sys
import time


def main():
    for i in range(200_000):
        print(f"{i:08d} processing record {i} with status ok and a fairly long trailing message")
        if i % 1000 == 0:
            sys.stdout.flush()
            time.sleep(0.02)


if __name__ == "__main__":
    main()
