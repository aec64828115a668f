"""Stage `tracemalloc`: which Python lines keep allocating memory that stays, over a series of snapshots."""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from leakbench.analysis.model import Frame, StageReport, Suspect
from leakbench.analysis.sites import (
    FrameRules,
    RawFrame,
    RawTrace,
    SiteGrowth,
    SnapshotSites,
    aggregate,
    growing_sites,
    peak_sites,
)
from leakbench.analysis.trend import analyse_series, significant
from leakbench.errors import LeakbenchError
from leakbench.launcher import AGENT_DIR, BudgetPolicy, LiveRun, Probe, TargetRun, rules_from_hello
from leakbench.report.charts import Line, line_chart
from leakbench.sourceinfo import function_at, line_text
from leakbench.stages.base import Contribution, StageContext
from leakbench.units import human_bytes

TOP_SITES = 10
# A conclusive stop needs this many snapshots of every process: snapshots stretch when the heap is big (a
# one-time load of millions of objects), and a few slow ones over a set-up would end the run before its work.
CONCLUSIVE_SNAPSHOTS = 10


@dataclass(frozen=True, slots=True)
class TracemallocParams:
    frames: int = 25  # traceback depth kept per allocation
    interval: float = 1.0  # seconds between snapshots (stretched when a snapshot is slow)
    budget: float = 90.0  # stop the target after this many seconds under tracemalloc (0: never)
    conclusive_after: float = 20.0  # stop once the traced heap grows steadily for this long (0: never)
    # Bursts, for long runs: tracemalloc on for `window` seconds (0: the whole run) after `warmup` seconds,
    # again `every` seconds after each window began (0: once); used only when the run's --duration is
    # longer than the warm-up and one window, so a short run is traced whole.
    window: float = 0.0
    every: float = 0.0
    warmup: float = 0.0


class ConclusivePolicy:
    """Stop when the traced heap has grown in a straight line long enough that more time adds nothing.

    Every process counts, not only the main one: a worker that started late, or whose heap has not been
    sampled long enough yet, keeps the run going until its own trend shows (the main process handing out
    work can look conclusive long before the workers that keep the memory have done theirs).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._checked_at = 0.0

    def should_stop(self, live: LiveRun) -> str | None:
        if not self.seconds or live.elapsed < self.seconds or live.elapsed - self._checked_at < 1.0:
            return None
        self._checked_at = live.elapsed
        events = live.events()
        heaps = {pid: [e for e in evs if e.get("event") == "heap"] for pid, evs in events.items()}
        ended = {pid for pid, evs in events.items() if any(e.get("event") == "final" for e in evs)}
        heaps = {pid: h for pid, h in heaps.items() if h and pid not in ended} or {
            pid: h for pid, h in heaps.items() if h
        }
        if not heaps:
            return None
        snapshots = {pid: sum(1 for e in evs if e.get("event") == "snapshot") for pid, evs in events.items()}
        if any(snapshots.get(pid, 0) < CONCLUSIVE_SNAPSHOTS for pid in heaps):
            return None  # the lines' own trends need enough snapshots, however straight the total looks
        verdicts = [_conclusive(h, self.seconds) for h in heaps.values()]
        if None in verdicts:  # a process whose trend has not shown yet
            return None
        return "conclusive" if any(verdicts) else None


def _conclusive(heap: list[dict[str, Any]], seconds: float) -> bool | None:
    """True: the heap grows in a straight line; False: it has shown a trend that is not that; None: too
    few samples, or sampled for less than `seconds`, to tell yet."""
    if len(heap) < 10 or heap[-1]["t"] - heap[0]["t"] < seconds / 2:
        return None
    trend = analyse_series([e["t"] for e in heap], [e["traced_bytes"] for e in heap])
    return trend.pattern == "linear" and trend.r_squared >= 0.95 and significant(trend.growth_bytes, 0)


class TracemallocStage:
    kind: ClassVar[str] = "tracemalloc"
    summary: ClassVar[str] = "tracemalloc snapshot series: the Python lines whose live memory keeps growing"
    own_run: ClassVar[bool] = False
    Params = TracemallocParams

    def __init__(self, params: TracemallocParams) -> None:
        self.params = params

    def contribute(self, ctx: StageContext) -> Contribution:
        options: dict[str, float] = {"frames": self.params.frames, "interval": self.params.interval}
        if self.bursts(ctx.options.duration):
            options.update(window=self.params.window, every=self.params.every, warmup=self.params.warmup)
        probe = Probe("tracemalloc", str(AGENT_DIR / "tracemalloc_probe.py"), options)
        policies = (BudgetPolicy(self.params.budget), ConclusivePolicy(self.params.conclusive_after))
        return Contribution(probes=(probe,), stop_policies=policies)

    def bursts(self, duration: float | None) -> bool:
        p = self.params
        return p.window > 0 and duration is not None and duration > p.warmup + p.window

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        if run is None:
            return StageReport(self.kind, "skipped", "no target run")
        per_pid: dict[int, list[SnapshotSites]] = {}
        growth: dict[int, list[SiteGrowth]] = {}
        windows: list[dict[str, Any]] = []
        for pid in sorted(run.events):
            snaps = run.events_of("snapshot", pid)
            if not snaps:
                continue
            rules = rules_from_hello(run.hello(pid))
            ended = run.events_of("target-end", pid)
            per_window: list[list[SiteGrowth]] = []
            for index, in_window in _by_window(snaps):
                series = [
                    aggregate(e["taken_at"] - run.started_at, _load_traces(Path(e["path"])), rules) for e in in_window
                ]
                per_pid.setdefault(pid, []).extend(series)
                if ended and len(series) > 2 and in_window[-1]["taken_at"] >= ended[0]["t"]:
                    rows = growing_sites(series[:-1], teardown=series[-1])
                else:
                    rows = growing_sites(series)
                per_window.append(rows)
                if index is not None:
                    windows.append(_window_row(pid, index, in_window, run.started_at, rows, rules))
            growth[pid] = per_window[0] if len(per_window) == 1 else merge_windows(per_window)
        if not per_pid:
            return StageReport(self.kind, "failed", "the target left no tracemalloc snapshot")
        suspects = _suspects(run, growth, per_pid)
        chart = _chart(ctx, run, growth)
        snapshots = sum(len(s) for s in per_pid.values())
        stopped = run.exit.stopped_by
        message = f"{snapshots} snapshots over {run.duration_s:.1f} s"
        if windows:
            traced = sum(w["end_s"] - w["start_s"] for w in windows if w["pid"] == run.pid)
            count = sum(1 for w in windows if w["pid"] == run.pid)
            message = (
                f"{snapshots} snapshots in {count} tracemalloc window{'s' if count != 1 else ''} "
                f"({traced:.0f} s traced of {run.duration_s:.0f} s)"
            )
        if suspects:
            top = suspects[0]
            message += (
                f"; top growing line {Path(top.file).name}:{top.line} ({top.function}) "
                f"+{human_bytes(top.bytes)}, ~{human_bytes(top.bytes_per_interval)} per interval"
            )
        else:
            message += "; no Python line kept growing"
        if stopped in ("conclusive", "budget"):
            message += f"; target stopped early ({stopped})"
        return StageReport(
            self.kind,
            "ok",
            message,
            suspects=tuple(suspects),
            data={
                "snapshots": snapshots,
                "stopped_early": stopped if stopped in ("conclusive", "budget") else None,
                "interval": self.params.interval,
                "frames": self.params.frames,
                "windows": windows,
                "chart": str(chart.relative_to(ctx.run_dir)) if chart else None,
                "growing": [
                    _site_row(pid, g, rules_from_hello(run.hello(pid)))
                    for pid, rows in growth.items()
                    for g in _shown(rows, rules_from_hello(run.hello(pid)))
                ],
                "peaks": [
                    {"pid": pid, "file": k[0], "line": k[1], "bytes": size, "count": total.count}
                    for pid, series in per_pid.items()
                    for k, size, total in peak_sites(series, 5)
                ],
                "heap": {
                    str(pid): [
                        [round(e["t"] - run.started_at, 3), e["traced_bytes"]] for e in run.events_of("heap", pid)
                    ]
                    for pid in per_pid
                },
            },
        )


def _by_window(snaps: list[dict[str, Any]]) -> list[tuple[int | None, list[dict[str, Any]]]]:
    """The snapshots of one process grouped by tracemalloc window, in order (one group, None: no windows)."""
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for e in snaps:
        groups.setdefault(e.get("window"), []).append(e)
    return list(groups.items())


def merge_windows(per_window: list[list[SiteGrowth]]) -> list[SiteGrowth]:
    """One row per site over several tracemalloc windows: the growth of each window added up (traces restart
    with each window, so a site's sizes are only comparable within one), steady when it was steady in most
    of the windows it grew in; the rest (times, sizes, traceback) from the window where it grew most."""
    by_key: dict[tuple[str, int], list[SiteGrowth]] = {}
    for rows in per_window:
        for g in rows:
            by_key.setdefault((g.file, g.line), []).append(g)
    out = []
    for rows in by_key.values():
        best = max(rows, key=lambda g: g.growth_bytes)
        steady = sum(1 for g in rows if g.steady)
        merged = replace(
            best,
            growth_bytes=sum(g.growth_bytes for g in rows),
            growth_count=sum(g.growth_count for g in rows),
            grew_in=sum(g.grew_in for g in rows) / len(per_window),
            fitted_growth=sum(g.fitted_growth for g in rows),
            # each window's evidence that the site rises, joined (Stouffer): short windows add up
            rise_z=sum(g.rise_z for g in rows) / math.sqrt(len(per_window)),
        )
        if steady * 2 < len(per_window):  # not steady in most windows: it does not pass for steady
            merged = replace(merged, rise_z=0.0)
        out.append(merged)
    out.sort(key=lambda g: (g.steady, g.growth_bytes), reverse=True)
    return out


def _window_row(
    pid: int, index: int, snaps: list[dict[str, Any]], started_at: float, rows: list[SiteGrowth], rules: FrameRules
) -> dict[str, Any]:
    top = [g for g in rows if rules.is_user(g.file)][:3] or rows[:3]
    return {
        "pid": pid,
        "index": index,
        "start_s": round(snaps[0]["taken_at"] - started_at, 2),
        "end_s": round(snaps[-1]["taken_at"] - started_at, 2),
        "snapshots": len(snaps),
        "top": [{"file": g.file, "line": g.line, "growth_bytes": g.growth_bytes, "steady": g.steady} for g in top],
    }


def _load_traces(path: Path) -> list[RawTrace]:
    try:
        snapshot = tracemalloc.Snapshot.load(str(path))
    except Exception as exc:  # a snapshot cut short when the target was killed
        raise LeakbenchError(f"cannot read tracemalloc snapshot {path}: {exc}") from None
    traces = snapshot.traces
    raw = getattr(traces, "_traces", None)
    if raw is not None:
        return list(raw)
    return [
        (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)), len(t.traceback))
        for t in traces
    ]


def frames_of(raw: tuple[RawFrame, ...], rules: FrameRules | None = None) -> tuple[Frame, ...]:
    """Newest-first raw frames to outermost-first Frames with function names, launch frames dropped."""
    out = []
    for file, line in reversed(raw):
        if rules and rules.is_launch(file):
            continue
        out.append(Frame(file, line, function_at(file, line), line_text(file, line)))
    return tuple(out)


def _suspects(
    run: TargetRun, growth: dict[int, list[SiteGrowth]], per_pid: dict[int, list[SnapshotSites]]
) -> list[Suspect]:
    out: list[Suspect] = []
    ended_oom = run.exit.status in ("memory-error", "killed")
    for pid, rows in growth.items():
        rules = rules_from_hello(run.hello(pid))
        for g in rows[:TOP_SITES]:
            out.append(
                Suspect(
                    file=g.file,
                    line=g.line,
                    function=function_at(g.file, g.line),
                    bytes=g.growth_bytes,
                    count=g.growth_count,
                    pid=pid,
                    stages=("tracemalloc",),
                    visible_to_tracemalloc=True,
                    text=line_text(g.file, g.line),
                    bytes_per_interval=g.bytes_per_interval,
                    count_per_interval=g.count_per_interval,
                    grew_in=g.grew_in,
                    trend="steady" if g.steady else ("plateau" if g.plateaued else "one-off"),
                    rate_bytes_per_s=g.slope_bytes_per_s,
                    traceback=frames_of(g.traceback, rules),
                    library=not rules.is_user(g.file),
                    last_growth=g.sizes[-1] - g.sizes[-2] if len(g.sizes) >= 2 else 0,
                )
            )
    # Steady lines in the user's own code first; import machinery and one-off set-up last.
    out.sort(key=lambda s: (s.trend == "steady", _is_user(run, s), s.bytes), reverse=True)
    out = [s for s in out if s.trend == "steady" or _is_user(run, s)]
    if ended_oom:
        out = _peak_suspects(run, per_pid) + [s for s in out if s.trend == "steady"]
    return _dedupe(out)


def _is_user(run: TargetRun, suspect: Suspect) -> bool:
    return rules_from_hello(run.hello(suspect.pid)).is_user(suspect.file)


def _peak_suspects(run: TargetRun, per_pid: dict[int, list[SnapshotSites]]) -> list[Suspect]:
    """When the target ran out of memory, what held the most at its peak (and the line that failed)."""
    out = []
    main_rules = rules_from_hello(run.hello())
    failing = [f for f in run.exit.traceback if main_rules.is_user(f.file)]
    for pid, series in per_pid.items():
        rules = rules_from_hello(run.hello(pid))
        for key, size, total in peak_sites(series, 3):
            if size < 1024 * 1024:
                continue
            out.append(
                Suspect(
                    file=key[0],
                    line=key[1],
                    function=function_at(*key),
                    bytes=size,
                    count=total.count,
                    pid=pid,
                    stages=("tracemalloc",),
                    visible_to_tracemalloc=True,
                    text=line_text(*key),
                    trend="peak",
                    traceback=frames_of(total.traceback, rules),
                )
            )
    if run.exit.status == "memory-error" and failing:
        f = failing[-1]
        size = next((s.bytes for s in out if (s.file, s.line) == (f.file, f.line)), 0)
        out.insert(
            0,
            Suspect(
                file=f.file,
                line=f.line,
                function=f.function,
                bytes=size,
                count=1,
                pid=run.pid,
                stages=("tracemalloc",),
                visible_to_tracemalloc=True,
                text=f.text,
                trend="failed",
                traceback=run.exit.traceback,
            ),
        )
    return out


def _dedupe(suspects: list[Suspect]) -> list[Suspect]:
    seen: set[tuple[str, int, int]] = set()
    out = []
    for s in suspects:
        key = (s.file, s.line, s.pid)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _shown(rows: list[SiteGrowth], rules: FrameRules) -> list[SiteGrowth]:
    """The rows worth a reader's time: steady growth anywhere, or any growth in the user's own code."""
    return [g for g in rows if g.steady or rules.is_user(g.file)][:TOP_SITES]


def _site_row(pid: int, g: SiteGrowth, rules: FrameRules) -> dict[str, Any]:
    return {
        "user_code": rules.is_user(g.file),
        "steady": g.steady,
        "pid": pid,
        "file": g.file,
        "line": g.line,
        "function": function_at(g.file, g.line),
        "text": line_text(g.file, g.line),
        "growth_bytes": g.growth_bytes,
        "growth_count": g.growth_count,
        "bytes_per_interval": g.bytes_per_interval,
        "count_per_interval": g.count_per_interval,
        "grew_in": round(g.grew_in, 3),
        "rise_z": round(g.rise_z, 2),
        "plateaued": g.plateaued,
        "final_bytes": g.final_bytes,
        "series": [[round(t, 3), s] for t, s in zip(g.times, g.sizes, strict=True)],
    }


def _chart(ctx: StageContext, run: TargetRun, growth: dict[int, list[SiteGrowth]]) -> Path | None:
    shown = [g for pid, gs in growth.items() for g in _shown(gs, rules_from_hello(run.hello(pid)))]
    rows = sorted(shown, key=lambda g: g.growth_bytes, reverse=True)[:5]
    if not rows:
        return None
    lines = [Line(f"{Path(g.file).name}:{g.line}", g.times, g.sizes) for g in rows]
    png, _ = line_chart(lines, ctx.run_dir / "images" / "tracemalloc-sites", title="Live bytes per growing line")
    return png
