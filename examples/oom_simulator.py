"""Allocations that grow by half each time until the address-space limit is hit (seed article 000).

The script caps its own address space at 1 GiB so that the interpreter raises MemoryError instead of
being killed by the OOM killer, and catches it. What the report should find: an `oom` verdict; the top
suspect is the line that makes the last, largest allocation (`os.urandom` or `np.ones`).

Run: python examples/oom_simulator.py [python|numpy]
"""

import os
import resource
import secrets
import sys

import numpy as np


def limit_memory(max_bytes):
    """Set a virtual memory limit to trigger a Python MemoryError before the OOM killer's SIGKILL."""
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def leak_python():
    print("Triggering OOM with a single pure Python bytes object...")
    current_size = 10 * 1024 * 1024
    data = None
    while True:
        if data is not None:
            del data
        print(f"Attempting to allocate {current_size // (1024**2)} MB bytes object...")
        data = os.urandom(current_size)  # expect: suspect-python
        current_size = int(current_size * 1.5)


def leak_numpy():
    print("Triggering OOM with a single native NumPy array...")
    current_elements = (10 * 1024 * 1024) // 8
    arr = None
    while True:
        if arr is not None:
            del arr
        print(f"Attempting to allocate {(current_elements * 8) // (1024**2)} MB float64 array...")
        arr = np.ones(current_elements, dtype=np.float64)  # expect: suspect-numpy
        current_elements = int(current_elements * 1.5)


if __name__ == "__main__":
    limit_memory(1 * 1024**3)
    mode = sys.argv[1] if len(sys.argv) > 1 else secrets.choice(["python", "numpy"])
    try:
        leak_python() if mode == "python" else leak_numpy()
    except MemoryError:
        print("\n[!] MemoryError caught.")
