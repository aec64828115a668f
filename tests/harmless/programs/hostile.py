"""Objects whose __hash__, __eq__, __repr__, __getattr__, __sizeof__ and __del__ raise or count their calls,
a metaclass with its own __eq__ and __hash__, and a proxy that lies about its __class__. They pile up in a
module-level list (so a heap scan follows them); the program prints how often each method ran, which must
be exactly what its own code caused."""

import gc

CALLS = {"hash": 0, "eq": 0, "repr": 0, "getattr": 0, "sizeof": 0, "del": 0, "meta_eq": 0, "meta_hash": 0, "class": 0}


class Meta(type):
    def __eq__(cls, other):
        CALLS["meta_eq"] += 1
        return cls is other

    def __hash__(cls):
        CALLS["meta_hash"] += 1
        return id(cls) >> 4

    def __getattribute__(cls, name):
        if name in ("__module__", "__qualname__", "__name__", "__mro__", "__dict__"):
            CALLS["getattr"] += 1
        return type.__getattribute__(cls, name)


class Hostile(metaclass=Meta):
    def __init__(self, n):
        self.n = n
        self.payload = [n] * 3

    def __hash__(self):
        CALLS["hash"] += 1
        raise RuntimeError("no hashing")

    def __eq__(self, other):
        CALLS["eq"] += 1
        raise RuntimeError("no comparing")

    def __repr__(self):
        CALLS["repr"] += 1
        raise RuntimeError("no repr")

    def __getattr__(self, name):
        CALLS["getattr"] += 1
        raise AttributeError(name)

    def __sizeof__(self):
        CALLS["sizeof"] += 1
        return 10**9

    def __del__(self):
        CALLS["del"] += 1


class Proxy:
    """A lazy proxy: any attribute (and isinstance's question about __class__) runs its own code."""

    def __init__(self, n):
        object.__setattr__(self, "_n", n)

    @property
    def __class__(self):
        CALLS["class"] += 1
        return dict

    def __getattribute__(self, name):
        if name != "_n":
            CALLS["getattr"] += 1
        return object.__getattribute__(self, name)


KEEP = []
for _round in range(150):
    for i in range(400):
        KEEP.append(Hostile(i))
        KEEP.append(Proxy(i))
        KEEP.append({i: Hostile(i)})
    junk = [Hostile(-1) for _ in range(50)]
    del junk
    [str(i) for i in range(20000)]
gc.collect()
print(len(KEEP), CALLS)
