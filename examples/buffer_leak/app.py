"""A request-handling loop whose memory grows until the OOM killer ends it (seed article 002).

What the report should find: a leak, growing linearly; the top suspect is the line in
data_pipeline.normalize_vectors that makes the arrays kept in the module-level `buffer`; the retention
chain names the module global `data_pipeline.buffer`.

Run: python examples/buffer_leak/app.py [REQUESTS]
"""

import sys
import time

import data_pipeline
import numpy as np


def handle_request(rng):
    rows = rng.random((8, 256))
    return data_pipeline.normalize_vectors(rows)


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = np.random.default_rng(2)
    for i in range(requests):
        handle_request(rng)
        if i % 50 == 0:
            time.sleep(0.1)
    print(f"handled {requests} requests, {len(data_pipeline.buffer)} vectors buffered")


if __name__ == "__main__":
    main()
