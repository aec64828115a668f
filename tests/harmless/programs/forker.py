"""Forks workers that allocate, write a file each and exit with their own code."""

import os
import sys

codes = []
for n in range(3):
    pid = os.fork()
    if pid == 0:
        data = [str(i) * 3 for i in range(200000)]
        with open(f"child-{n}.txt", "w") as handle:
            handle.write(f"child {n} made {len(data)}\n")
        os._exit(10 + n)
    _, status = os.waitpid(pid, 0)
    codes.append(os.waitstatus_to_exitcode(status))
print(codes)
sys.stdout.flush()
