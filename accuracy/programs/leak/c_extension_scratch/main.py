"""A service calling a C extension that leaks a scratch buffer per call and returns a short str which the
service keeps (a small, Python-visible share): the line's growth is almost all C-level."""
# accuracy.verdict: leak

import os
import subprocess
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_built():
    """Compile scratch.c next to this file, into build-<interpreter>/, with the machine's C compiler."""
    folder = os.path.join(HERE, f"build-{sys.implementation.cache_tag}")
    target = os.path.join(folder, "scratch" + sysconfig.get_config_var("EXT_SUFFIX"))
    source = os.path.join(HERE, "scratch.c")
    if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(source):
        os.makedirs(folder, exist_ok=True)
        include = sysconfig.get_paths()["include"]
        cmd = [os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-g", f"-I{include}", source, "-o", target]
        subprocess.run(cmd, check=True)
    return folder


sys.path.insert(0, ensure_built())

import scratch  # noqa: E402

DIGESTS = []


def handle(i):
    DIGESTS.append(scratch.digest(i))  # expect: suspect
    return i % 3


def main():
    total = 0
    for i in range(600):
        total += handle(i)
        time.sleep(0.01)
    print(total, len(DIGESTS))


if __name__ == "__main__":
    main()
