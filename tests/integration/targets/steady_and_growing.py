"""One class whose objects keep accumulating, one whose number stays the same."""

import time


class Steady:
    pass


class Growing:
    def __init__(self, n):
        self.n = n


STEADY = [Steady() for _ in range(300)]
GROWING = []

if __name__ == "__main__":
    for _ in range(40):
        GROWING.extend(Growing(i) for i in range(100))
        time.sleep(0.1)
