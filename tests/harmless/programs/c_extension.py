"""Calls into C through ctypes: libc's qsort calling back into Python, memmove, and malloc/free."""

import ctypes
import ctypes.util

libc = ctypes.CDLL(ctypes.util.find_library("c"))
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
calls = [0]


def compare(a, b):
    calls[0] += 1
    [str(i) for i in range(20)]  # allocates inside the callback, while C is on the stack
    return (a[0] > b[0]) - (a[0] < b[0])


total = 0
for round_ in range(30):
    n = 2000
    arr = (ctypes.c_int * n)(*[(i * 7919 + round_) % 10007 for i in range(n)])
    libc.qsort(arr, n, ctypes.sizeof(ctypes.c_int), CMP(compare))
    assert all(arr[i] <= arr[i + 1] for i in range(n - 1))
    libc.malloc.restype = ctypes.c_void_p
    buf = libc.malloc(1 << 16)
    ctypes.memmove(buf, arr, n * 4)
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(buf)
    total += arr[0] + arr[n - 1]
print(total, calls[0] > 0)
