"""The line_profile probe under sys.monitoring against sys.settrace, on one interpreter (3.12 or later).

A target times its own work: many calls of small functions the probe does not profile, and some calls of the
function it does. It runs plainly, then under `leakbench lineprofile` with LEAKBENCH_LINE_TRACER=settrace and
=monitoring, alternating; the medians of its own timings give each tracer's slowdown and their ratio. A ratio,
not a timed test: these machines are noisy.

    .venv/bin/python bench/lineprofile_tracers.py [--python /path/to/python3.13] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TARGET = """
import time

def helper(x):
    return x * 2 + 1

def parse(row):
    return [helper(v) for v in row]

def handle(rows):
    out = []
    for row in rows:
        out.append(sum(parse(row)))
    return out

rows = [list(range(20)) for _ in range(50)]
began = time.perf_counter()
for i in range(40000):
    parse(rows[i % 50])  # unprofiled calls: what sys.settrace pays for and sys.monitoring does not
    if i % 1000 == 0:
        handle(rows)  # the profiled function: line events under both
print(f"workload {time.perf_counter() - began:.4f} s")
"""


def workload_seconds(command: list[str], env: dict[str, str]) -> float:
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False).stdout
    found = re.search(r"workload ([0-9.]+) s", out)
    if not found:
        raise SystemExit(f"the target printed no timing: {out[-500:]}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (3.12 or later)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "target.py"
        script.write_text(TARGET)
        plain = [args.python, str(script)]
        profiled = [sys.executable, "-m", "leakbench", "lineprofile", str(script), "--function", "handle"]
        profiled += ["--repro-calls", "1000", "--python", args.python]
        times: dict[str, list[float]] = {"plain": [], "settrace": [], "monitoring": []}
        for _ in range(args.repeat):
            times["plain"].append(workload_seconds(plain, dict(os.environ)))
            for tracer in ("settrace", "monitoring"):
                env = {**os.environ, "LEAKBENCH_LINE_TRACER": tracer}
                times[tracer].append(workload_seconds(profiled, env))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"target interpreter: {args.python}")
    for name in ("plain", "settrace", "monitoring"):
        print(f"{name:>11}: {median[name]:.3f} s  ({median[name] / median['plain']:.1f}x plain)")
    print(f"settrace / monitoring: {median['settrace'] / median['monitoring']:.2f}")


if __name__ == "__main__":
    main()
