"""Python frames around a C call and back into Python: a lambda that sorted() calls, under a function with a
non-ASCII name."""


def inner():
    return [bytearray(300_000 + i) for i in range(3)]  # expect: alloc


def größe():
    return sorted([3, 1, 2], key=lambda x: (inner(), x)[1])  # expect: sort


größe()  # expect: module
