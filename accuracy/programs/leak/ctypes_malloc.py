"""Native memory through ctypes: each request mallocs a 64 KiB scratch buffer from libc, fills it and never
frees it. tracemalloc sees nothing; there is no Python object to follow."""
# accuracy.verdict: leak

import ctypes
import ctypes.util
import time

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def handle(i):
    scratch = libc.malloc(64 * 1024)  # expect: suspect
    libc.memset(scratch, i % 256, 64 * 1024)
    return i % 7


def main():
    total = 0
    for i in range(1500):
        total += handle(i)
        time.sleep(0.004)
    print(total)


if __name__ == "__main__":
    main()
