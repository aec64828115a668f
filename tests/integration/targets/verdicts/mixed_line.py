"""One line keeps both a small Python string and a 256 KiB C buffer (malloc through ctypes) per request.

tracemalloc sees the string and the tuple; nearly all of the line's growth is the C buffer it cannot see.
Run: python mixed_line.py [SECONDS]
"""

import ctypes
import sys
import time

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

SCRATCH = 256 * 1024
KEPT = []


def handle(request):
    KEPT.append((libc.malloc(SCRATCH), f"checksum {request:08x}"))  # expect: suspect
    libc.memset(KEPT[-1][0], 7, SCRATCH)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    deadline = time.monotonic() + seconds
    request = 0
    while time.monotonic() < deadline:
        handle(request)
        request += 1
        time.sleep(0.01)
    print("requests", request)


if __name__ == "__main__":
    main()
