"""The join of every stage's findings into one value: suspects merged and ranked, process trends, the verdict.

Pure: it reads stage reports and what each target run measured (already read from disk), and returns a frozen
`Findings`; the report only renders it. The trend, plateau and rate come from the least-disturbed run (the
native tracker's, or a run with RSS sampling alone); tracemalloc's run gives the line hints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from leakbench.analysis.model import Retention, Role, StageReport, StageStatus, Suspect, TargetExit, Trend, Verdict
from leakbench.analysis.trend import analyse_series, without_final_drop
from leakbench.analysis.verdict import (
    SMALL_LEAK,
    ProcessTrend,
    decide,
    growing,
    order_by_stops,
    stopped_sites,
    target_failed,
)

# How much each stage slows the target and changes its timing: a run is as disturbed as its worst stage.
DISTURBANCE = {"rss": 0, "native": 1, "backrefs": 2, "tracemalloc": 3}
UNKNOWN_DISTURBANCE = 2
NATIVE_SHAPE = ("steady", "one-off")  # the native stage judged the site's shape over its own timeline


@dataclass(frozen=True, slots=True)
class RunView:
    """One target run as the join reads it: which stages rode along, how it ended, what RSS did."""

    name: str
    stages: tuple[str, ...]
    exit: TargetExit
    duration_s: float
    processes: tuple[ProcessTrend, ...]

    @property
    def disturbance(self) -> int:
        return max((DISTURBANCE.get(s.split("-")[0], UNKNOWN_DISTURBANCE) for s in self.stages), default=0)

    def label(self) -> str:
        kinds = [s.split("-")[0] for s in self.stages]
        if not kinds or kinds == ["rss"]:
            what = "RSS sampling alone"
        elif "tracemalloc" in kinds:
            what = "under tracemalloc"
        elif "native" in kinds:
            what = "under the native tracker"
        else:
            what = "with " + ", ".join(kinds)
        return f"{self.name} ({what})"


@dataclass(frozen=True, slots=True)
class StageLine:
    name: str
    status: StageStatus
    message: str


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything the report says, decided once."""

    verdict: Verdict
    exit: TargetExit
    duration_s: float | None
    processes: tuple[ProcessTrend, ...]
    suspects: tuple[Suspect, ...]
    retention: tuple[Retention, ...]
    stages: tuple[StageLine, ...]
    judged_on: str | None  # the run the trend, plateau and rate come from
    hints_from: str | None  # the run tracemalloc's line hints come from
    sources: tuple[tuple[str, str], ...] = ()  # (figure, run it comes from)
    roles: tuple[tuple[int, Role], ...] = ()  # every process of every run: main or child (a worker)

    def role_of(self, pid: int) -> Role:
        return next((role for p, role in self.roles if p == pid), "main")


def merge_suspects(reports: Mapping[str, StageReport], *, native_shape_wins: bool = False) -> list[Suspect]:
    """One entry per (source line, process), whichever stage saw it.

    Each stage's own measure is kept apart: `tracemalloc_bytes` (Python's allocators) and `native_bytes`
    (every allocation); the line is visible to tracemalloc when it saw most of what the native tracker saw.
    With `native_shape_wins`, the native tracker's run is the least-disturbed one and its judgement of the
    site's shape (steady or made once) replaces tracemalloc's. Ranked by `rank`.
    """
    merged: dict[tuple[str, int, int], Suspect] = {}
    # the stages that measure retained growth first, whatever order the reports come in
    order = {"tracemalloc": 0, "native": 1, "line_profile": 3}
    for report in sorted(reports.values(), key=lambda r: order.get(r.name.split("-")[0], 2)):
        kind = report.name.split("-")[0]
        for s in report.suspects:
            s = _measured(s, kind)
            key = (s.file, s.line, s.pid)
            old = merged.get(key) or merged.get((s.file, s.line, _any_pid(merged, s)))
            if old is None:
                merged[key] = s
                continue
            okey = (old.file, old.line, old.pid)
            if kind == "line_profile":
                # the line profile measures what a line added over a short repro (allocations it may free
                # again), not what it retained over the run: it agrees on the line, it does not size it
                s = replace(s, bytes=0, count=0)
            trend = _stronger(old.trend, s.trend)
            if native_shape_wins and kind == "native" and s.trend in NATIVE_SHAPE and old.trend != "failed":
                trend = s.trend
            elif native_shape_wins and "native" in old.stages and old.trend in NATIVE_SHAPE and s.trend != "failed":
                trend = old.trend
            merged[okey] = Suspect(
                file=old.file,
                line=old.line,
                function=old.function or s.function,
                bytes=max(old.bytes, s.bytes),
                count=max(old.count, s.count),
                pid=old.pid,
                stages=tuple(dict.fromkeys(old.stages + s.stages)),
                visible_to_tracemalloc=next((x.visible_to_tracemalloc for x in (old, s) if "native" in x.stages), True),
                native_frames=old.native_frames or s.native_frames,
                text=old.text or s.text,
                bytes_per_interval=old.bytes_per_interval or s.bytes_per_interval,
                count_per_interval=old.count_per_interval or s.count_per_interval,
                grew_in=max(old.grew_in, s.grew_in),
                trend=trend,
                rate_bytes_per_s=max(old.rate_bytes_per_s, s.rate_bytes_per_s),
                traceback=old.traceback or s.traceback,
                # The native tracker splits a line's growth in one run (what went through Python's
                # allocators, what did not); tracemalloc's own run did a different amount of work.
                # Small objects come from the interpreter's arenas, which the capture counts apart: when it
                # saw none of the line's growth go through Python's allocators, tracemalloc's own figure stands.
                tracemalloc_bytes=(old if old.native_bytes else s).tracemalloc_bytes
                or max(old.tracemalloc_bytes, s.tracemalloc_bytes),
                native_bytes=max(old.native_bytes, s.native_bytes),
                library=old.library,
                last_growth=max(old.last_growth, s.last_growth),
            )
    out = [_with_visibility(s) for s in merged.values()]
    return rank(out)


def with_keepers(
    suspects: Sequence[Suspect], retention: Sequence[Retention], roles: Mapping[int, Role]
) -> list[Suspect]:
    """Where a process's steady growth is allocated only by library code (a pool worker unpickling its
    tasks, a client decoding responses), the user's line that stores it in the root backrefs found comes
    first, carrying that growth: it is the line to change. Each run has its own pids, so processes are
    matched by role."""
    out = list(suspects)
    for r in retention:
        if not r.kept_at:
            continue
        role = roles.get(r.pid, "main")
        steady = [s for s in out if s.trend == "steady" and roles.get(s.pid, "main") == role]
        if not steady or not all(s.library for s in steady):
            continue
        top = steady[0]
        file, line, function, text = r.kept_at[0]
        # the line as other stages saw it (a list's own growth as it is appended to) is folded in
        seen = [s for s in out if (s.file, s.line) == (file, line) and roles.get(s.pid, "main") == role]
        out = [s for s in out if s not in seen]
        # backrefs found the line, the measures are the library line's; its traceback stays with that line
        keeper = replace(
            top, file=file, line=line, function=function, text=text, library=False, keeps=top.where(), traceback=()
        )
        keeper = replace(keeper, stages=tuple(dict.fromkeys(("backrefs", *(x for s in seen for x in s.stages)))))
        out.insert(out.index(top), keeper)
    return out


def _any_pid(merged: Mapping[tuple[str, int, int], Suspect], s: Suspect) -> int:
    """The pid an earlier stage saw this line in: each run has its own pids, so the same line in another
    run's process of the same role is the same site."""
    for file, line, pid in merged:
        if (file, line) == (s.file, s.line):
            return pid
    return -1


def _measured(s: Suspect, kind: str) -> Suspect:
    if kind == "tracemalloc" and not s.tracemalloc_bytes:
        return replace(s, tracemalloc_bytes=s.bytes)
    if kind == "native" and not s.native_bytes:
        return replace(s, native_bytes=s.bytes, tracemalloc_bytes=s.bytes if s.visible_to_tracemalloc else 0)
    return s


def _with_visibility(s: Suspect) -> Suspect:
    """The native stage judges whether a line it saw is visible to tracemalloc (most of its growth went
    through Python's allocators, in the same run); a line only tracemalloc saw is visible by definition."""
    if s.trend == "failed" or "native" in s.stages:
        return s
    return replace(s, visible_to_tracemalloc=True)


_TREND_ORDER = ("failed", "steady", "peak", "plateau", "one-off", "")


def _stronger(a: str, b: str) -> str:
    return min(a, b, key=lambda t: _TREND_ORDER.index(t) if t in _TREND_ORDER else len(_TREND_ORDER))


def rank(suspects: Sequence[Suspect]) -> list[Suspect]:
    """The line whose allocation failed first, then steady growth before one-off allocations, the program's
    own lines before library lines (a library line is a site only when none of the program's code was on
    the stack: a server's thread parsing a request the program then keeps), then by the growth over time
    (bytes), a site that several stages agree on counting half as much again. Of the lines that did not grow
    steadily, those that still grew over the last interval come first."""

    def key(s: Suspect) -> tuple[int, int, int, int, float]:
        agreement = 1.5 if len(s.stages) > 1 else 1.0
        growing = s.trend in ("steady", "peak")
        late = s.last_growth >= SMALL_LEAK  # of the others, what still grew at the end of the run first
        return (s.trend != "failed", not growing, s.library, not (growing or late), -s.bytes * agreement)

    return sorted(suspects, key=key)


def least_disturbed(runs: Sequence[RunView]) -> RunView | None:
    """The run whose instruments slowed the target least, among those with an RSS trend to read."""
    usable = [r for r in runs if r.processes]
    if not usable:
        return None
    return min(usable, key=lambda r: (r.disturbance, runs.index(r)))


def join(
    runs: Sequence[RunView],
    reports: Mapping[str, StageReport],
    *,
    memory_limit: int | None = None,
    traced_growth: Mapping[int, Trend] | None = None,
) -> Findings:
    """The findings of an investigation: the verdict judged on the least-disturbed run, suspects from all."""
    primary = runs[0] if runs else None
    judge = least_disturbed(runs)
    hints = next((r for r in runs if any(s.startswith("tracemalloc") for s in r.stages)), None)
    native_judges = judge is not None and any(s.startswith("native") for s in judge.stages)
    # The native run's judgement of a site's shape replaces tracemalloc's only while its RSS does not grow
    # either: a site it judged by a few sampled points is not enough against a process that keeps growing.
    # ... and only when that run has the processes (main, workers) in which tracemalloc saw the lines grow.
    all_roles = {p.pid: p.role for r in runs for p in r.processes}
    tm = reports.get("tracemalloc")
    needed = {all_roles.get(s.pid, "main") for s in (tm.suspects if tm else ()) if s.trend == "steady"}
    settled = (
        judge is not None
        and not any(growing(p) for p in judge.processes)
        and needed <= {p.role for p in judge.processes}
    )
    suspects = merge_suspects(reports, native_shape_wins=native_judges and settled)
    retention = tuple(r for report in reports.values() for r in report.retention)
    suspects = with_keepers(suspects, retention, all_roles)
    failed = sum(int(r.data.get("failed_allocations", 0) or 0) for r in reports.values())
    exit_ = primary.exit if primary else TargetExit(None, None, "ok")
    others = tuple(r for r in runs if judge is not None and r is not judge and r.processes)
    roles = {p.pid: p.role for r in runs for p in r.processes}
    # What the processes held in the native tracker's run: a plateau of RSS in the judged run is only growth
    # that stopped if that live heap levelled off too (RSS hides a slow leak behind a big one-time load).
    heap = native_heap(reports)
    disturbed = tuple((r.label(), r.processes) for r in others)
    steady = [s for s in suspects if s.trend == "steady"]
    stops = stopped_sites(steady, judge.processes, disturbed, judge.label(), roles, heap) if judge and disturbed else {}
    verdict = decide(
        judge.processes if judge else (),
        exit_,
        suspects,
        memory_limit=memory_limit,
        failed_allocations=failed,
        traced_growth=traced_growth,
        native_live_bytes=_native_live(reports),
        retention=retention,
        judged_on=judge.label() if judge else None,
        disturbed=disturbed,
        ran_native="native" in {n.split("-")[0] for n, r in reports.items() if r.status == "ok"},
        roles=roles,
        judged_heap=heap,
        stops=stops,
    )
    suspects = order_by_stops(suspects, stops)
    if judge is not None and judge.disturbance >= DISTURBANCE["tracemalloc"] and verdict.kind == "leak":
        verdict = _judged_under_tracemalloc(verdict, judge)
    stages = tuple(_stage_line(name, r, exit_, primary, verdict) for name, r in reports.items())
    sources: list[tuple[str, str]] = []
    if judge:
        sources.append(("trend, plateau and rate", judge.label()))
    if hints:
        sources.append(("growing lines and the Python-visible share", hints.label()))
    return Findings(
        verdict=verdict,
        exit=exit_,
        duration_s=primary.duration_s if primary else None,
        processes=judge.processes if judge else (),
        suspects=tuple(suspects),
        retention=retention,
        stages=stages,
        judged_on=judge.label() if judge else None,
        hints_from=hints.label() if hints else None,
        sources=tuple(sources),
        roles=tuple(sorted(roles.items())),
    )


def _judged_under_tracemalloc(verdict: Verdict, judge: RunView) -> Verdict:
    """Only a run under tracemalloc to judge on: it slows the target several times, so a cache that fills
    in seconds when run plainly may still be filling here. Said plainly, with a little less confidence."""
    reason = (
        f"the shape is read on {judge.label()}, which slows the target several times: growth toward a bound "
        "that is still filling looks the same there; the full playbook judges on the native tracker's run"
    )
    return replace(verdict, confidence=min(verdict.confidence, 0.75), reasons=(*verdict.reasons, reason))


def traced_growth(reports: Mapping[str, StageReport]) -> dict[int, Trend]:
    """The trend of the heap tracemalloc traced, per process."""
    tm = reports.get("tracemalloc")
    if tm is None or tm.status != "ok":
        return {}
    out = {}
    for pid, rows in tm.data.get("heap", {}).items():
        if len(rows) >= 3:
            out[int(pid)] = analyse_series([r[0] for r in rows], [r[1] for r in rows])
    return out


def native_heap(reports: Mapping[str, StageReport]) -> tuple[ProcessTrend, ...]:
    """The trend of what each process held (every live allocation and the interpreter's arenas) in the
    native tracker's run, up to the moment the target's code returned: the live heap of the least-disturbed
    run, free of the allocator's retention and of the teardown."""
    native = reports.get("native")
    if native is None or native.status != "ok":
        return ()
    out = []
    for proc in native.data.get("processes", []):
        rows = [r for r in proc.get("live", []) if proc.get("target_end_s") is None or r[0] < proc["target_end_s"]]
        if len(rows) < 5:
            continue
        times, values = without_final_drop([r[0] for r in rows], [int(r[1]) for r in rows])
        # the work after the set-up: a one-time load and its temporaries peak early in the run
        times, values = times[len(rows) // 3 :], values[len(rows) // 3 :]
        if len(times) < 5:
            continue
        trend = analyse_series(times, values)
        out.append(ProcessTrend(int(proc["pid"]), proc.get("role", "main"), trend, len(rows), tuple(values)))
    return tuple(out)


def _native_live(reports: Mapping[str, StageReport]) -> int | None:
    native = reports.get("native")
    if native is None or native.status != "ok":
        return None
    main = next((p for p in native.data.get("processes", []) if p.get("role") == "main"), None)
    return None if main is None else int(main["leaked_bytes"]) + int(main["interpreter_arena_bytes"])


def _stage_line(
    name: str, report: StageReport, exit: TargetExit, primary: RunView | None, verdict: Verdict
) -> StageLine:
    """A stage that measured nothing useful because the target failed before its work does not pretend
    to be ok: when the verdict is that failure (inconclusive), a stage that found no suspect and no root
    failed with it."""
    failure = target_failed(exit)
    found = bool(report.suspects or report.retention)
    failed_early = failure is not None and verdict.kind == "inconclusive" and verdict.summary.startswith("The target")
    if failed_early and primary is not None and report.status == "ok" and not found:
        return StageLine(name, "failed", f"too little to measure: {failure} after {primary.duration_s:.1f} s")
    return StageLine(name, report.status, report.message)
