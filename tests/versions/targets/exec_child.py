"""Runs a fresh python on child mode of this file (which keeps buffers in a module-level list for ~2.5 s) and a
shell command; prints what each saw."""

import os
import subprocess
import sys
import time

kept = []


def child():
    for _ in range(16):
        for _ in range(100):
            kept.append(bytearray(20_000))  # expect: child
        time.sleep(0.15)
    print("child sitecustomize", os.environ.get("SITE_MARK_SEEN", "no"), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        child()
    else:
        print("main sitecustomize", os.environ.get("SITE_MARK_SEEN", "no"), flush=True)
        subprocess.run([sys.executable, __file__, "child"], check=True)
        shell = subprocess.run(
            ["sh", "-c", "echo shell ran; env | grep -c LEAKBENCH_ || true"], capture_output=True, text=True
        )
        print(shell.stdout.replace("\n", " "), flush=True)
