"""Overhead of leakbench's native tracker against `memray run --native`, on the same workloads, in one run.

Run: .venv/bin/python bench/native_overhead.py [--rounds N] [--quick]

Each workload runs plain, under memray's native mode and under leakbench's tracker, the three
alternating within each round so that machine noise hits all of them alike; times are medians. For each
tool it prints the wall-time ratio against plain, the events recorded, the capture's size (kB, median of
the rounds, and bytes per event), and the time to produce a report from the capture: memray's `memray
flamegraph` (its default, high-water mark view) against what a leakbench investigation computes from a
capture (`capture_views`: leaks, high-water mark, live-per-site timeline, failed allocations, suspects)
and its flame graph.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leakbench.native.capture import compact_capture, find_captures  # noqa: E402
from leakbench.native.runner import preload_env  # noqa: E402

PYTHON = sys.executable  # the venv interpreter: memray and numpy are installed there

WORKLOADS = {
    # Objects of every size: most come from pymalloc, the bigger ones (dict tables, long lists, strings
    # over 512 bytes) from malloc; a slow leak through a module-level list.
    "python-churn": """
        import sys
        kept = []
        def step(i):
            d = {str(k): [k] * 8 for k in range(60)}
            s = "x" * (100 + i % 2000)
            t = tuple(range(i % 300))
            l = [s, t, d] * 40
            if i % 50 == 0:
                kept.append(bytearray(2000))
            return len(l)
        total = 0
        for i in range(N):
            total += step(i)
        """,
    # numpy arrays from a few KiB to a few MiB: every buffer is a malloc (or mmap) and a free.
    "numpy-churn": """
        import numpy as np
        kept = []
        rng = np.random.default_rng(1)
        for i in range(N // 4):
            a = rng.random(500 + (i % 50) * 200)
            b = np.sqrt(a) * 2.0 + a
            c = np.concatenate([a, b])
            m = np.outer(a[:60], b[:60])
            s = float(c.sum() + m.sum())
            if i % 100 == 0:
                kept.append(np.ones(3000))
        """,
    # A request handler: JSON in, validation with regexes, JSON out, an unbounded per-user cache.
    "json-service": """
        import json, re, hashlib
        cache = {}
        EMAIL = re.compile(r"^[a-z0-9.]+@[a-z]+\\.[a-z]{2,}$")
        def handle(i):
            items = [{"id": k, "qty": k % 7, "name": "item-%d" % k} for k in range(30)]
            payload = json.dumps({"user": f"u{i % 3000}", "email": f"user{i}@example.com", "items": items})
            req = json.loads(payload)
            ok = bool(EMAIL.match(req["email"]))
            total = sum(it["qty"] for it in req["items"])
            digest = hashlib.sha256(payload.encode()).hexdigest()
            body = json.dumps({"ok": ok, "total": total, "digest": digest})
            cache.setdefault(req["user"], []).append(body[:40])
            return len(body)
        for i in range(N // 2):
            handle(i)
        """,
}


@dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    capture_bytes: int = 0
    events: int = 0
    report_seconds: float = 0.0


def run(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def plain(script: Path, work: Path) -> Result:
    return Result(run([PYTHON, str(script)]))


def memray(script: Path, work: Path) -> Result:
    out = work / "memray.bin"
    seconds = run([PYTHON, "-m", "memray", "run", "--native", "-q", "-f", "-o", str(out), str(script)])
    return Result(seconds, out.stat().st_size)


def leakbench(script: Path, work: Path) -> Result:
    """The run, and the compaction leakbench's launcher does when the target has exited (timed too:
    memray compresses its capture at the end of the run as well)."""
    for old in work.glob("lbt.*"):
        old.unlink()
    start = time.perf_counter()
    run([PYTHON, str(script)], env=preload_env(str(work / "lbt.%p")))
    [path] = find_captures(str(work / "lbt.%p"))
    size = compact_capture(path)
    return Result(time.perf_counter() - start, size)


def memray_events(work: Path) -> int:
    from memray import FileReader

    with FileReader(str(work / "memray.bin")) as reader:
        return sum(1 for _ in reader.get_allocation_records())


def memray_report(work: Path) -> float:
    html = work / "memray.html"
    return run([PYTHON, "-m", "memray", "flamegraph", "-f", "-o", str(html), str(work / "memray.bin")])


def leakbench_report(work: Path) -> tuple[float, int]:
    """Decode, symbolise, analyse and render, in a fresh process like memray's report: `capture_views`,
    what an investigation computes from a capture, then the flame graph page it writes."""
    code = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from leakbench.native.capture import find_captures, read_capture
        from leakbench.report.flamegraph import render_flamegraph_html
        from leakbench.stages.native import capture_views, library_rules
        [path] = find_captures({str(work / "lbt.%p")!r})
        capture = read_capture(path)
        views = capture_views(capture, rules=library_rules())
        page = render_flamegraph_html(views.leaks.groups, title="Native memory still live")
        open({str(work / "leakbench.html")!r}, "w").write(page)
        print(len(capture.events))
        """
    )
    start = time.perf_counter()
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, int(proc.stdout)


REPORTS = {
    "memray": "`memray flamegraph`: the stacks live at the high-water mark, as an HTML flame graph",
    "leakbench": (
        "capture_views() + flame graph: leaks at the target-end mark or finalizing cut, the high-water mark "
        "and what was live then, live bytes per site over time, failed allocations, arena growth, ranked "
        "suspects, and the HTML flame graph of the leaks (the PNG chart of the timeline is not drawn)"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 3 rounds")
    args = parser.parse_args()
    n = 20_000 if args.quick else 60_000
    rounds = 3 if args.quick else args.rounds
    tools: dict[str, Callable[[Path, Path], Result]] = {
        "plain": plain,
        "memray": memray,
        "leakbench": leakbench,
    }
    print(f"CPython {sys.version.split()[0]}, {rounds} rounds, N={n}; times are medians\n")
    header = (
        f"{'workload':<14}{'tool':<11}{'wall s':>8}{'ratio':>8}{'events':>11}{'capture KB':>12}{'B/event':>9}"
        f"{'report s':>10}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="lbt-bench-") as tmp:
        for name, body in WORKLOADS.items():
            work = Path(tmp) / name
            work.mkdir()
            script = work / f"{name}.py"
            script.write_text(f"N = {n}\n" + textwrap.dedent(body))
            times: dict[str, list[float]] = {t: [] for t in tools}
            sizes: dict[str, list[int]] = {t: [] for t in tools}
            last: dict[str, Result] = {}
            for r in range(rounds):
                order = list(tools) if r % 2 == 0 else list(reversed(tools))
                for tool in order:
                    last[tool] = tools[tool](script, work)
                    times[tool].append(last[tool].seconds)
                    sizes[tool].append(last[tool].capture_bytes)
            base = statistics.median(times["plain"])
            m_events = memray_events(work)
            m_report = statistics.median(memray_report(work) for _ in range(3))
            l_runs = [leakbench_report(work) for _ in range(3)]
            l_report = statistics.median(s for s, _ in l_runs)
            l_events = l_runs[0][1]
            rows = [
                ("plain", base, 0, 0, 0.0),
                (
                    "memray",
                    statistics.median(times["memray"]),
                    m_events,
                    int(statistics.median(sizes["memray"])),
                    m_report,
                ),
                (
                    "leakbench",
                    statistics.median(times["leakbench"]),
                    l_events,
                    int(statistics.median(sizes["leakbench"])),
                    l_report,
                ),
            ]
            for tool, seconds, events, size, report in rows:
                per_event = f"{size / events:.3f}" if events else "-"
                kb = f"{size / 1000:.1f}" if size else "-"
                print(
                    f"{name:<14}{tool:<11}{seconds:>8.2f}{seconds / base:>8.2f}{events or '-':>11}{kb:>12}"
                    f"{per_event:>9}{(f'{report:.2f}' if report else '-'):>10}"
                )
            print()
    print("What each report computes:")
    for tool, what in REPORTS.items():
        print(f"  {tool}: {what}")


if __name__ == "__main__":
    main()
