"""How much longer an investigation takes than the target's own run, per bundled example.

Runs each example plainly and under `leakbench investigate` with the given playbook, alternating, and
prints the ratio of the medians. A ratio, not a timed test: these machines are noisy.

    .venv/bin/python bench/investigate_overhead.py [--playbook quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    ["examples/buffer_leak/app.py"],
    ["examples/word_frequency.py"],
    ["examples/mem_leaker.py"],
    ["examples/bounded_cache.py"],
    ["examples/oom_simulator.py", "numpy"],
]


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default="quick")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"{'example':34} {'plain s':>8} {'leakbench s':>12} {'ratio':>7}   (playbook {args.playbook})")
    for example in EXAMPLES:
        plain, traced = [], []
        for _ in range(args.repeat):
            plain.append(timed([sys.executable, *example]))
            with tempfile.TemporaryDirectory() as out:
                command = [
                    sys.executable,
                    "-m",
                    "leakbench",
                    "investigate",
                    "--yes",
                    "--playbook",
                    args.playbook,
                ]
                traced.append(timed([*command, "--out", f"{out}/run", *example]))
        p, t = statistics.median(plain), statistics.median(traced)
        print(f"{' '.join(example):34} {p:8.2f} {t:12.2f} {t / p:7.1f}x")


if __name__ == "__main__":
    main()
