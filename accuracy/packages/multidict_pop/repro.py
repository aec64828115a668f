"""A proxy that copies request headers into a fresh CIMultiDict and pops the hop-by-hop ones out
(the pattern of multidict issue #1232)."""

import time

from multidict import CIMultiDict

HOP = ["Connection", "Keep-Alive", "Proxy-Authorization", "TE", "Trailer", "Upgrade"]


def forward(i):
    headers = CIMultiDict({f"X-Any-{k}": f"value {i}-{k}" for k in range(60)})  # expect: suspect
    for name in HOP:
        headers[name] = "x"
    for key in list(headers.keys()):
        headers.pop(key)  # expect: suspect
    return len(headers)


def main():
    total = 0
    for i in range(10_000):
        total += forward(i)
        if i % 10 == 0:
            time.sleep(0.004)
    print(total)


if __name__ == "__main__":
    main()
