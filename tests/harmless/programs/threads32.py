"""32 threads that compute and allocate at once; the result does not depend on how they were scheduled."""

import threading

RESULTS = {}


def work(n):
    acc = []
    total = 0
    for i in range(120000):
        acc.append((i, str(i * n)))
        if len(acc) > 500:
            total += sum(len(s) for _, s in acc)
            acc.clear()
    RESULTS[n] = total


threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(RESULTS.values()), len(RESULTS))
