"""Reads records from stdin; a prefix given as an argument; every parsed record is kept in a cache.

`export()` runs only with `--export`: the function a repro without that flag never reaches.
"""

import sys

cache = {}


def parse(line, prefix):
    key, _, value = line.partition("=")
    cache[prefix + key] = value.strip() * 200  # expect: suspect
    return key


def export():
    return "\n".join(cache)


def main():
    prefix = sys.argv[1]
    count = 0
    for line in sys.stdin:
        parse(line, prefix)
        count += 1
    if "--export" in sys.argv:
        export()
    print(f"parsed {count} records with prefix {prefix}")


if __name__ == "__main__":
    main()
