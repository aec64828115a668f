"""The tracker's own C code, run under valgrind's memcheck over a small threaded Python workload, makes
no invalid access and reads no uninitialised memory (errors inside Python itself are not ours)."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from leakbench.native.capture import find_captures, read_capture
from leakbench.native.runner import preload_env
from tests.native.conftest import PYTHON

WORKLOAD = """
import ctypes, os, threading
lib = ctypes.CDLL(os.environ["FIXTURE_LIB"])
lib.fixture_realloc.restype = ctypes.c_void_p
lib.fixture_realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
def work(n):
    blocks = [bytearray(1000 + i) for i in range(300)]
    p = None
    for size in (100, 5000, 70000, 10):
        p = lib.fixture_realloc(p, size)
    lib.fixture_churn(2, 500)
threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print("done")
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_the_tracker_is_clean_under_memcheck(tmp_path: Path, fixture_lib: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text(textwrap.dedent(WORKLOAD))
    template = str(tmp_path / "vg.%p.lbt")
    env = preload_env(template)
    env["FIXTURE_LIB"] = str(fixture_lib)
    # nouserintercepts: memcheck replaces libc's malloc, not ours, so our hooks run (and forward to it)
    memcheck = ["valgrind", "-q", "--soname-synonyms=somalloc=nouserintercepts", "--num-callers=30"]
    proc = subprocess.run(
        [*memcheck, PYTHON, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.stdout == "done\n", proc.stderr[-3000:]
    errors = [block for block in re.split(r"==\d+== \n", proc.stderr) if "_tracker" in block]
    assert errors == [], "memcheck errors in the tracker:\n" + "\n".join(errors[:3])
    [path] = find_captures(template)
    capture = read_capture(path)
    assert capture.complete
    assert sum(1 for s in capture.events.size if 1001 <= s <= 1300) >= 3 * 300
