"""Stage `native`: every malloc/free with Python + native stacks, from our preloaded C tracker.

It sees what tracemalloc cannot (C extensions, libraries, buffers made outside Python's allocators),
keeps its capture when the target is killed, and records allocations that failed for lack of memory.
The target gets a run of its own: tracemalloc's bookkeeping would otherwise show up in the capture.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from leakbench.analysis.model import StageReport, Suspect
from leakbench.analysis.native import (
    ARENA_SITE,
    ArenaGrowth,
    FailedAllocation,
    HeapHistory,
    HighWater,
    LeakReport,
    StackGroup,
    Timeline,
    arena_growth,
    failed_allocations,
    high_water_mark,
    leaks,
    leaks_between,
    native_part,
    own_python_frames,
    retained_growth,
    site_shape,
    site_timeline,
    suspects_from_leaks,
)
from leakbench.analysis.sites import IMPORTING, FrameRules
from leakbench.errors import TrackerError
from leakbench.launcher import AGENT_DIR, BudgetPolicy, Probe, TargetRun, rules_from_hello
from leakbench.native.capture import Capture, compact_capture, find_captures, read_capture
from leakbench.native.runner import preload_env
from leakbench.native.symbolize import StackFrame, resolve_stacks
from leakbench.report.flamegraph import render_flamegraph_html
from leakbench.sourceinfo import function_at, line_text
from leakbench.stages.base import Contribution, StageContext
from leakbench.units import human_bytes

TEMPLATE = "native.%p.lbt"
MIN_SUSPECT_BYTES = 64 * 1024
VISIBLE_SHARE = 0.5  # tracemalloc "sees" a native site when it found at least this share of its bytes


@dataclass(frozen=True, slots=True)
class NativeParams:
    native_depth: int = 64  # native frames kept per allocation
    tick_ms: int = 20  # RSS ticks and flushes: a killed target loses at most about this much
    top: int = 10  # suspects and chart lines
    budget: float = 60.0  # stop a target that is still running after this many seconds (0: never)


class NativeStage:
    kind: ClassVar[str] = "native"
    summary: ClassVar[str] = "our C allocation tracker: native + Python stacks, leaks, peak, failed allocations"
    own_run: ClassVar[bool] = False
    exclusive: ClassVar[bool] = True
    Params = NativeParams

    def __init__(self, params: NativeParams) -> None:
        self.params = params

    def contribute(self, ctx: StageContext) -> Contribution:
        template = ctx.stage_dir(self.kind) / TEMPLATE
        base = {"LD_PRELOAD": os.environ["LD_PRELOAD"]} if os.environ.get("LD_PRELOAD") else {}
        env = preload_env(str(template), base=base, native_depth=self.params.native_depth, tick_ms=self.params.tick_ms)
        probe = Probe("native", str(AGENT_DIR / "native_probe.py"))
        return Contribution(probes=(probe,), env=env, stop_policies=(BudgetPolicy(self.params.budget),))

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        if run is None:
            return StageReport(self.kind, "skipped", "no target run")
        paths = find_captures(ctx.stage_dir(self.kind) / TEMPLATE)
        if not paths:
            return StageReport(self.kind, "failed", "the target left no native capture (was the tracker preloaded?)")

        suspects: list[Suspect] = []
        per_process: list[dict[str, Any]] = []
        problems: list[str] = []
        for path in paths:
            try:
                compact_capture(path)
                capture = read_capture(path)
            except TrackerError as exc:
                problems.append(str(exc))
                continue
            rules = rules_from_hello(run.hello(capture.pid) or run.hello())
            found, summary = analyse_capture(
                capture, path, rules=rules, out_dir=ctx.run_dir, top=self.params.top, main_pid=run.pid
            )
            suspects += found
            per_process.append(summary)
        if not per_process:
            return StageReport(self.kind, "failed", "; ".join(problems))
        suspects = _rank(_with_visibility(ctx, suspects))
        failed = sum(p["failed_allocations"] for p in per_process)
        main = per_process[0]
        unavailable = sorted({p["python_frames"] for p in per_process if p.get("python_frames")})
        message = "".join(f"{note}; " for note in unavailable)
        message += f"{sum(p['events'] for p in per_process):,} allocation events"
        message += f"; {human_bytes(main['leaked_bytes'])} still live at the end of the target's code"
        if suspects:
            top = suspects[0]
            message += f"; top: {Path(top.file).name}:{top.line} ({human_bytes(top.bytes)})"
            if top.native_frames:
                message += f" via {top.native_frames[0]}"
        if failed:
            message += f"; {failed} allocation(s) failed for lack of memory"
        if problems:
            message += "; " + "; ".join(problems)
        return StageReport(
            self.kind,
            "ok",
            message,
            suspects=tuple(suspects),
            data={"failed_allocations": failed, "processes": per_process},
        )


@dataclass(frozen=True, slots=True)
class CaptureViews:
    """Everything an investigation reads from one capture (the report draws from these)."""

    stacks: dict[int, tuple[StackFrame, ...]]
    leaks: LeakReport  # at the target-end mark when there is one, else at the finalizing cut
    suspects: list[Suspect]
    timeline: Timeline
    failures: tuple[FailedAllocation, ...]
    peak: HighWater
    arenas: ArenaGrowth


def library_rules() -> FrameRules:
    """Frame rules for a capture read on its own: the user's code is whatever lies outside the standard
    library, site-packages and leakbench's agent."""
    paths = sysconfig.get_paths()
    library = {paths[k].rstrip("/") + "/" for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return FrameRules(tuple(sorted(library)), str(AGENT_DIR) + "/")


def capture_views(capture: Capture, *, rules: FrameRules, top: int = 10) -> CaptureViews:
    """Symbolise once, replay once (HeapHistory), and compute every view from that."""
    stacks = resolve_stacks(capture)
    history = HeapHistory(capture)
    pid = capture.pid
    report = _leaks_of_the_run(capture, stacks, history)
    suspects = suspects_from_leaks(
        _with_python_frames(_without_imports(report)),
        pid=pid,
        is_user_file=rules.is_user,
        inherited=rules.inherited,
        limit=top * 2,
        min_bytes=MIN_SUSPECT_BYTES,
        source_line=line_text,
    )
    suspects = [
        replace(
            s,
            function=function_at(s.file, s.line) if s.line else s.function,
            traceback=tuple(f for f in s.traceback if not rules.is_launch(f.file)),
        )
        for s in suspects
    ]
    # More sites than are shown, so that the ones that grow late but steadily are judged too.
    timeline = site_timeline(capture, stacks, site_of=_site_namer(rules), top=top * 3, history=history)
    steadiness = _steadiness(timeline.times_ms, {s.site: s.bytes for s in timeline.sites})
    suspects = [replace(s, **steadiness.get(f"{s.file}:{s.line}", {})) for s in suspects]
    failures = failed_allocations(capture, stacks)
    suspects = _failure_suspects(failures, pid, rules) + suspects
    peak = high_water_mark(capture, stacks, history=history)
    return CaptureViews(stacks, report, suspects, timeline, failures, peak, arena_growth(capture))


def analyse_capture(
    capture: Capture, path: Path, *, rules: FrameRules, out_dir: Path, top: int = 10, main_pid: int | None = None
) -> tuple[list[Suspect], dict[str, Any]]:
    """Suspects and a JSON-able summary of one capture; writes its chart and flamegraph under out_dir."""
    views = capture_views(capture, rules=rules, top=top)
    pid = capture.pid
    report, suspects, timeline, failures, peak, arenas = (
        views.leaks,
        views.suspects,
        views.timeline,
        views.failures,
        views.peak,
        views.arenas,
    )
    chart = _chart(out_dir, pid, timeline.times_ms, timeline.sites)
    flame = out_dir / "images" / f"native-flamegraph-{pid}.html"
    flame.parent.mkdir(parents=True, exist_ok=True)
    flame.write_text(render_flamegraph_html(report.groups, title=f"Native memory still live, pid {pid}"))
    return suspects, {
        "pid": pid,
        "role": "child" if capture.header.forked_child or (main_pid and pid != main_pid) else "main",
        "python_version": _version_text(capture.header.python_version),
        "python_frames": capture.header.python_frames_unavailable,
        "capture": _relative(path, out_dir),
        "capture_bytes": path.stat().st_size,
        "capture_state": capture.describe_cut(),
        "events": len(capture.events),
        "leak_cut": report.cut,
        # live bytes (every allocation and the interpreter's arenas) over time, for the verdict's trend of
        # the least-disturbed run; with the moment the target's code returned
        "live": [[round(t / 1000, 3), b] for t, b in zip(timeline.times_ms, timeline.total, strict=True)],
        "target_end_s": next((m.time_ms / 1000 for m in capture.marks if m.label == "target-end"), None),
        "leaked_bytes": report.bytes,
        "leaked_blocks": report.count,
        "interpreter_arena_bytes": report.interpreter_bytes,
        "arenas": {"start": arenas.start_bytes, "end": arenas.end_bytes, "peak": arenas.peak_bytes},
        "peak_bytes": peak.bytes,
        "peak_ms": peak.time_ms,
        "peak_top": [_group_row(g) for g in peak.groups[:5]],
        "leaks_top": [_group_row(g) for g in report.groups[:top]],
        "failed_allocations": len(failures),
        "failures": [
            {"size": f.size, "allocator": f.allocator, "frames": [fr.label() for fr in f.frames[:12]]}
            for f in failures[:5]
        ],
        "chart": _relative(chart, out_dir) if chart else None,
        "flamegraph": _relative(flame, out_dir),
    }


def _version_text(hexversion: int) -> str:
    return f"{hexversion >> 24}.{(hexversion >> 16) & 0xFF}" if hexversion else ""


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _leaks_of_the_run(
    capture: Capture, stacks: dict[int, tuple[StackFrame, ...]], history: HeapHistory | None = None
) -> LeakReport:
    """What the target's code allocated and still held when it returned; else what was live at exit."""
    marks = {m.label: m for m in capture.marks}
    start, end = marks.get("target-start"), marks.get("target-end")
    if start is None or end is None:
        return leaks(capture, stacks, history=history)
    return leaks_between(capture, stacks, start, end, history=history)


def _without_imports(report: LeakReport) -> LeakReport:
    """Leave out what modules allocated while being imported (a library's buffers, code objects): it is
    made once at start-up, not with the program's work, as for the tracemalloc stage."""
    kept = tuple(g for g in report.groups if not any(f.kind == "python" and f.file in IMPORTING for f in g.frames))
    return replace(report, groups=kept)


def _with_python_frames(report: LeakReport) -> LeakReport:
    """Only the stacks that name a Python line can make suspects: a native symbol (`lib.so:0`, where Python
    frames were unavailable or the thread never ran Python) is neither a suspect line nor something to
    profile. Such stacks stay in the leak table and the flame graph."""
    kept = tuple(g for g in report.groups if any(f.kind == "python" and f.line > 0 for f in g.frames))
    return replace(report, groups=kept)


def _python_site(frames: Sequence[StackFrame], rules: FrameRules) -> StackFrame | None:
    """The innermost Python frame in the user's own code, else the innermost Python frame."""
    python = own_python_frames(frames, rules.inherited)
    return next((f for f in python if rules.is_user(f.file)), python[0] if python else None)


def _site_namer(rules: FrameRules) -> Callable[[tuple[StackFrame, ...]], str]:
    def name(frames: tuple[StackFrame, ...]) -> str:
        where = _python_site(frames, rules)
        if where is not None:
            return f"{where.file}:{where.line}"
        return frames[0].function if frames else "<no stack>"

    return name


def _steadiness(times: Sequence[int], series: dict[str, Sequence[int]]) -> dict[str, dict[str, Any]]:
    """For each site: in what share of the timeline's steps it grew, and its rate; a "steady" trend."""
    out: dict[str, dict[str, Any]] = {}
    for site, values in series.items():
        shape = site_shape(times, values)
        if shape is not None:
            out[site] = {"grew_in": round(shape[0], 3), "trend": shape[1], "rate_bytes_per_s": shape[2]}
    return out


def _failure_suspects(failures: Sequence[Any], pid: int, rules: FrameRules) -> list[Suspect]:
    """The line whose allocation failed: the one that hit the memory limit."""
    out = []
    for failure in sorted(failures, key=lambda f: -f.size)[:1]:
        where = _python_site(failure.frames, rules)
        if where is None:
            continue
        out.append(
            Suspect(
                file=where.file,
                line=where.line,
                function=function_at(where.file, where.line),
                bytes=failure.size,
                count=len(failures),
                pid=pid,
                stages=("native",),
                visible_to_tracemalloc=True,
                native_frames=native_part(failure.frames),
                text=line_text(where.file, where.line),
                trend="failed",
            )
        )
    return out


def _with_visibility(ctx: StageContext, suspects: list[Suspect]) -> list[Suspect]:
    """Visible when most of the line's growth in this run went through Python's allocators (the capture
    splits it), or when the tracemalloc stage measured as much growth at the line; else it is C-level."""
    suspects = [
        replace(s, visible_to_tracemalloc=s.native_bytes - s.tracemalloc_bytes <= VISIBLE_SHARE * s.native_bytes)
        if s.native_bytes and s.trend != "failed"
        else s
        for s in suspects
    ]
    tm = ctx.earlier.get("tracemalloc")
    if tm is None or tm.status != "ok":
        return suspects
    seen: dict[tuple[str, int], int] = {}
    for row in tm.data.get("growing", []):
        key = (row["file"], row["line"])
        seen[key] = max(seen.get(key, 0), int(row["growth_bytes"]))
    for s in tm.suspects:
        seen[(s.file, s.line)] = max(seen.get((s.file, s.line), 0), s.bytes)
    out = []
    for s in suspects:
        if s.trend == "failed":
            out.append(s)
            continue
        visible = s.visible_to_tracemalloc or seen.get((s.file, s.line), 0) >= VISIBLE_SHARE * s.bytes
        out.append(replace(s, visible_to_tracemalloc=visible))
    return out


def _rank(suspects: list[Suspect]) -> list[Suspect]:
    failed = [s for s in suspects if s.trend == "failed"]
    rest = sorted((s for s in suspects if s.trend != "failed"), key=lambda s: (s.trend != "steady", -s.bytes))
    return failed + rest


def _group_row(group: StackGroup) -> dict[str, Any]:
    return {
        "bytes": group.bytes,
        "count": group.count,
        "interpreter": group.interpreter,
        "frames": [f.label() for f in group.frames[:12]],
    }


def _chart(out_dir: Path, pid: int, times_ms: Sequence[int], sites: Sequence[Any]) -> Path | None:
    from leakbench.report.charts import Line, line_chart  # matplotlib: only when a chart is drawn

    # Ranked by what each site retained over time, not by what is live at the end (a one-time buffer).
    ranked = sorted(sites, key=lambda s: -retained_growth(s.bytes))
    shown = [s for s in ranked if s.site != ARENA_SITE and retained_growth(s.bytes) > 0][:5]
    if not shown:
        return None
    times = [t / 1000 for t in times_ms]
    lines = [Line(_short(s.site), times, s.bytes) for s in shown]
    png, _ = line_chart(lines, out_dir / "images" / f"native-sites-{pid}", title="Live native bytes per site")
    return png


def _short(site: str) -> str:
    head, _, line = site.rpartition(":")
    return f"{Path(head).name}:{line}" if head and line.isdigit() else site
