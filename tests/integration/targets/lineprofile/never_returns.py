"""A service loop that never returns: only the time budget ends its line profile."""

import time

seen = []


def serve():
    number = 0
    while True:
        number += 1
        seen.append(f"request {number} " * 100)  # expect: suspect
        time.sleep(0.001)


if __name__ == "__main__":
    serve()
