"""import numpy (OpenBLAS maps its buffers at import), then steady work: every step makes fresh arrays,
multiplies them and keeps only a float."""
# accuracy.verdict: no-leak
# accuracy.requires: numpy

import time

import numpy as np


def step(i):
    a = np.full((200, 200), i % 10, dtype=np.float64)
    b = a @ a.T
    return float(b.sum())


def main():
    total = 0.0
    for i in range(420):
        total += step(i)
        time.sleep(0.008)
    print(f"{total:.0f}")


if __name__ == "__main__":
    main()
