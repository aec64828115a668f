"""A job function that configures logging on every call: a new handler (with its formatter and buffer)
is added to the same logger each time and never removed."""
# accuracy.verdict: leak
# accuracy.root: handlers of logger 'jobs'

import io
import logging
import time


def run_job(i):
    log = logging.getLogger("jobs")
    handler = logging.StreamHandler(io.StringIO("x" * 2000))  # expect: suspect
    handler.setFormatter(logging.Formatter(f"job {i} %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.ERROR)
    log.info("job %d started", i)
    return i % 5


def main():
    total = 0
    for i in range(4000):
        total += run_job(i)
        if i % 20 == 0:
            time.sleep(0.025)
    print(total, len(logging.getLogger("jobs").handlers))


if __name__ == "__main__":
    main()
