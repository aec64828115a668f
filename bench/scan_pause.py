"""How long the backrefs stage's heap scans pause the target, and how much memory the agent adds.

A target holds N live objects the collector tracks (10^5, 10^6, 5*10^6 tuples) and runs for a while
doing light work; a thread of its own wakes every millisecond and records the longest gap it saw (what
any thread of a service would see as a stall). It runs plainly, under a playbook with the backrefs stage
alone (rss + backrefs), and under `quick` (rss + tracemalloc + backrefs). Printed per heap size:

- the pause per checkpoint the agent measured (longest and median), and the longest stall the target saw;
- the checkpoints taken, and how objects were counted (every n-th one on big heaps);
- the agent's memory: the target's peak RSS under the backrefs stage minus its plain peak RSS.

Under `quick` the target runs several times slower (tracemalloc traces every allocation, the heap's
build too), and the tracemalloc stage may stop it at its time budget before it prints its own figures:
then the stall it saw is shown as nan, and the agent's figures still are.

    .venv/bin/python bench/scan_pause.py [--sizes 100000,1000000,5000000] [--seconds 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAKBENCH = Path(sys.executable).with_name("leakbench")

TARGET = """
import sys, threading, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
heap = [[i] for i in range(n)]  # lists: the collector tracks them (a tuple of untracked items is untracked)
gap = [0.0]
done = threading.Event()

def heartbeat():
    last = time.perf_counter()
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        gap[0] = max(gap[0], now - last)
        last = now

t = threading.Thread(target=heartbeat, daemon=True)
began = time.perf_counter()
t.start()
keep = []
while time.perf_counter() - began < seconds:
    keep.append([str(i) for i in range(200)])  # a little growth, so that the stage has something to follow
    time.sleep(0.01)
done.set()
t.join()
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
print(f"max_gap_s={gap[0]:.4f} hwm={hwm}")
"""

BACKREFS_ONLY = """name = "backrefs-only"
description = "The backrefs stage on its own: RSS and the heap scans, no tracemalloc."

[[stages]]
kind = "rss"

[[stages]]
kind = "backrefs"
"""


def _parse(stdout: str) -> dict[str, float]:
    lines = [s for s in stdout.splitlines() if s.startswith("max_gap_s=")]
    if not lines:  # stopped by leakbench before it printed (the tracemalloc stage's time budget)
        return {"max_gap_s": float("nan"), "hwm": float("nan")}
    return {k: float(v) for k, v in (p.split("=") for p in lines[-1].split())}


def run_plain(script: Path, n: int, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(script), str(n), str(seconds)], capture_output=True, text=True, check=True
    )
    return _parse(done.stdout)


def run_under(script: Path, n: int, seconds: float, playbook: str, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [
            str(LEAKBENCH),
            "investigate",
            "--yes",
            "--playbook",
            playbook,
            "--out",
            str(out),
            str(script),
            str(n),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = _parse(done.stdout)
    events = []
    for path in sorted((out / "runs").glob("run-*/channel/*.jsonl")):
        for line in path.read_text().splitlines():
            e = json.loads(line)
            if e.get("event") == "backrefs-counts":
                events.append(e)
    pauses = [float(e.get("pause_s", 0.0)) for e in events]
    figures.update(
        checkpoints=len(events),
        pause_max=max(pauses, default=0.0),
        pause_median=statistics.median(pauses) if pauses else 0.0,
        stride=max((int(e.get("stride", 1)) for e in events), default=1),
        objects=max((int(e.get("objects", 0)) for e in events), default=0),
        unfenced=max((int(e.get("unfenced", 0)) for e in events), default=0),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leakbench-scan-pause-") as tmp:
        folder = Path(tmp)
        script = folder / "heap_target.py"
        script.write_text(TARGET)
        playbook = folder / "backrefs-only.toml"
        playbook.write_text(BACKREFS_ONLY)
        print(
            f"{'objects':>9}  {'playbook':13} {'checkpoints':>11} {'pause max':>9} {'median':>7} "
            f"{'stall seen':>10} {'plain stall':>11} {'counted':>9} {'agent memory':>12}"
        )
        for n in (int(s) for s in args.sizes.split(",")):
            plain = run_plain(script, n, args.seconds)
            for name, book in (("backrefs-only", str(playbook)), ("quick", "quick")):
                began = time.monotonic()
                under = run_under(script, n, args.seconds, book, folder / f"run-{n}-{name}")
                extra = (under["hwm"] - plain["hwm"]) / 2**20
                counted = "all" if under["stride"] <= 1 else f"1 in {int(under['stride'])}"
                memory = f"{extra:+.0f} MiB" if name == "backrefs-only" else "(tracemalloc)"
                print(
                    f"{n:>9}  {name:13} {int(under['checkpoints']):>11} {under['pause_max']:>8.3f}s "
                    f"{under['pause_median']:>6.3f}s {under['max_gap_s']:>9.3f}s {plain['max_gap_s']:>10.3f}s "
                    f"{counted:>9} {memory:>12}   ({time.monotonic() - began:.0f} s)"
                )
                sys.stdout.flush()


if __name__ == "__main__":
    main()
