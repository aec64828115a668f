"""Wraps pre-serialised fragments in rapidjson.RawJSON; some fragments arrive as bytes, which RawJSON
rejects with a TypeError that the caller catches and falls back on."""

import time

import rapidjson


def wrap(fragment):
    try:
        return rapidjson.RawJSON(fragment)  # expect: suspect
    except TypeError:
        return None


def main():
    fragments = [b'{"a": 1}', '{"b": 2}']
    kept = 0
    for _batch in range(4000):
        for _ in range(120):
            kept += wrap(fragments[0]) is None
        wrap(fragments[1])
        time.sleep(0.001)
    print(kept)


if __name__ == "__main__":
    main()
