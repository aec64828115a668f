"""Load for leaky_server.py: a bounded number of requests to a loopback port, then it stops by itself."""

import sys
import time
import urllib.request

port = int(sys.argv[1])
deadline = time.monotonic() + 30
sent = 0
while sent < 3000 and time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{sent}", timeout=2).read()
        sent += 1
        if sent % 50 == 0:
            print("sent", sent, flush=True)
    except OSError:
        time.sleep(0.1)
    time.sleep(0.002)
print("sent", sent)
