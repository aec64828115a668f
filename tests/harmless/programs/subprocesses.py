"""Starts other programs (Python and not) and prints what they printed."""

import subprocess
import sys

outs = []
for i in range(5):
    done = subprocess.run([sys.executable, "-c", f"print({i} * 7)"], capture_output=True, text=True, check=True)
    outs.append(done.stdout.strip())
echo = subprocess.run(["sh", "-c", "echo from-sh; exit 4"], capture_output=True, text=True)
print(outs, echo.stdout.strip(), echo.returncode)
sys.stdout.flush()
subprocess.run([sys.executable, "-c", "print('child writes to our stdout')"], check=True)
