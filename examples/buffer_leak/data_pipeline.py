"""The data pipeline of a request-handling service (seed article 002).

Each request's vectors are normalised and buffered for a batch write. The flush threshold was meant to be
1000 but is 10000, and the buffer is never reset after a flush: the module-level `buffer` grows forever.
"""

import numpy as np

FLUSH_THRESHOLD = 10000  # bug: meant to be 1000, so the flush never happens in practice
buffer = []
flushed = 0


def flush(items):
    global flushed
    flushed += len(items)
    # missing: buffer = []


def normalize_vectors(rows):
    arrays = [np.asarray(row) / (np.linalg.norm(row) or 1.0) for row in rows]  # expect: suspect
    buffer.extend(arrays)
    if len(buffer) >= FLUSH_THRESHOLD:
        flush(buffer)
    return len(arrays)
