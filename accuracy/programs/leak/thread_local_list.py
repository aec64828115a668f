"""A background sampler thread appends every sample to a list local to its own function; the main thread
works and stops it at the end. The growth happens in the thread, held by its running frame."""
# accuracy.verdict: leak
# accuracy.root: local variable samples of sampler()

import threading
import time


def sampler(stop):
    samples = []
    tick = 0
    while not stop.is_set():
        samples.append({"tick": tick, "label": f"sample-{tick}", "values": [tick] * 40})  # expect: suspect
        tick += 1
        time.sleep(0.002)
    return len(samples)


def main():
    stop = threading.Event()
    thread = threading.Thread(target=sampler, args=(stop,), name="sampler")
    thread.start()
    total = 0
    for i in range(600):
        total += sum(range(i % 1000))
        time.sleep(0.01)
    stop.set()
    thread.join()
    print(total)


if __name__ == "__main__":
    main()
