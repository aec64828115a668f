"""The kept memory is allocated inside a library function (copy.deepcopy) called from the user's code.

Profiling `copy:deepcopy` itself would point into the standard library; leakbench profiles the caller,
`Archive.keep`, whose marked line stores the copies.
"""

import copy
import sys


class Archive:
    def __init__(self):
        self.items = []

    def keep(self, record):
        self.items.append(copy.deepcopy(record))  # expect: suspect
        return len(self.items)


def main():
    archive = Archive()
    record = {"payload": [list(range(50)) for _ in range(10)], "name": "x" * 100}
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 300):
        archive.keep(record)
    print(f"kept {len(archive.items)} records")


if __name__ == "__main__":
    main()
