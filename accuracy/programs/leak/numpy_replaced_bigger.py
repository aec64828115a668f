"""A tracker object (held in a module global) keeps its history as a numpy array that each step replaces
with a bigger one (np.concatenate): one array, growing in size."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.TRACKER
# accuracy.requires: numpy

import time

import numpy as np


class Tracker:
    def __init__(self):
        self.history = np.zeros((0, 8))

    def record(self, i):
        row = np.full((50, 8), float(i))
        self.history = np.concatenate([self.history, row])  # expect: suspect


TRACKER = Tracker()


def main():
    for i in range(1200):
        TRACKER.record(i)
        time.sleep(0.004)
    print(TRACKER.history.shape)


if __name__ == "__main__":
    main()
