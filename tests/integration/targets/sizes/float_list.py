"""One module-level list of floats that only gets longer: the floats are not tracked by the collector."""

import time

samples = []


def measure(i):
    samples.extend(float(i) + k / 1000 for k in range(1000))


def main():
    for i in range(150):
        measure(i)
        time.sleep(0.02)
    print(len(samples))


if __name__ == "__main__":
    main()
