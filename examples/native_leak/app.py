"""A service whose C extension leaks a scratch buffer on every request.

What the report should find: a leak that tracemalloc cannot see; the top suspect is the Python line
that calls the extension (marked `suspect`), with the extension's `leaky_process` among the native
frames and `visible_to_tracemalloc: false`.

Run: python examples/native_leak/app.py [REQUESTS]
"""

import sys
import time

import build

sys.path.insert(0, build.ensure_built())

import leakyext


def handle(request_id):
    payload = {"id": request_id, "status": "ok"}
    payload["checksum"] = leakyext.process(256 * 1024)  # expect: suspect
    return payload


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for i in range(requests):
        handle(i)
        time.sleep(0.01)
    print(f"handled {requests} requests")


if __name__ == "__main__":
    main()
