"""Join the stages' findings into one verdict: leak, no-leak, oom or inconclusive, with a confidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from leakbench.analysis.model import Role, Suspect, TargetExit, Trend, Verdict, VerdictKind
from leakbench.analysis.trend import significant, trough_growth
from leakbench.units import and_list, human_bytes, human_duration, human_rate

MIN_SAMPLES = 5
MIN_DURATION_S = 1.0
SMALL_LEAK = 256 * 1024


@dataclass(frozen=True, slots=True)
class ProcessTrend:
    pid: int
    role: Role
    trend: Trend
    samples: int
    rss_series: tuple[int, ...] = ()
    vms_now: int = 0


def growing(pt: ProcessTrend) -> bool:
    t = pt.trend
    if t.pattern in ("linear", "step"):
        return t.slope_bytes_per_s > 0
    if t.pattern == "sawtooth":
        return significant(trough_growth(pt.rss_series), t.start_bytes)
    return False


def decide(
    processes: Sequence[ProcessTrend],
    exit: TargetExit,
    suspects: Sequence[Suspect],
    *,
    memory_limit: int | None = None,
    failed_allocations: int = 0,
    traced_growth: Mapping[int, Trend] | None = None,
    native_live_bytes: int | None = None,
) -> Verdict:
    """The verdict, with the reasons that led to it, most important first.

    `native_live_bytes`: what the native tracker saw allocated during the run and still live at its end
    (None when it did not run). RSS that grows while neither tracemalloc's heap nor the native live
    bytes do is the allocator keeping freed memory, not a leak.
    """
    reasons: list[str] = []
    kind: VerdictKind
    main = next((p for p in processes if p.role == "main"), processes[0] if processes else None)
    growers = sorted((p for p in processes if growing(p)), key=lambda p: p.trend.slope_bytes_per_s, reverse=True)
    focus = growers[0] if growers else main
    steady = [s for s in suspects if s.trend == "steady" and s.bytes >= SMALL_LEAK]
    pattern = focus.trend.pattern if focus else "flat"
    rate = focus.trend.slope_bytes_per_s if focus else 0.0
    to_limit = _seconds_to_limit(focus, memory_limit) if focus and rate > 0 else None
    top = suspects[0] if suspects else None

    if exit.status == "memory-error" or failed_allocations:
        kind, confidence = "oom", 0.95
        reasons.append(
            "the target raised MemoryError"
            if exit.status == "memory-error"
            else "allocations failed for lack of memory"
        )
    elif exit.status == "killed" and exit.signal == 9:
        kind, confidence = "oom", 0.75
        reasons.append("the target was killed by SIGKILL, as the OOM killer does")
    elif growers and not steady and _allocator_retention(growers[0], traced_growth, native_live_bytes):
        kind, confidence = "no-leak", 0.6
        grown = growers[0].trend.end_bytes - growers[0].trend.start_bytes
        reasons.append(
            f"RSS grew by {human_bytes(grown)} while the live heap did not (tracemalloc's traced memory stayed "
            f"flat and the native tracker saw {human_bytes(native_live_bytes or 0)} still live): the allocator "
            "keeps freed memory (fragmentation, arenas), this is not a leak"
        )
        pattern = "plateau" if growers[0].trend.pattern == "plateau" else growers[0].trend.pattern
    elif growers:
        kind = "leak"
        confidence = 0.55 + 0.25 * max(0.0, focus.trend.r_squared if focus else 0.0)
        reasons.append(f"RSS of pid {growers[0].pid} grows ({pattern}, {human_rate(rate)})")
        if steady:
            confidence += 0.15
            reasons.append(f"{_seen_by(steady[0])} {steady[0].where()} grow in {steady[0].grew_in:.0%} of intervals")
    elif steady:
        kind, confidence = "leak", 0.6 + 0.2 * steady[0].grew_in
        rate = steady[0].rate_bytes_per_s
        reasons.append(
            f"RSS is {pattern} (its growth is hidden by the start-up or too small yet), but "
            f"{_seen_by(steady[0])} {steady[0].where()} grow steadily (+{human_bytes(steady[0].bytes)})"
        )
        pattern = "linear"
        focus = None
    elif pattern == "plateau":
        kind, confidence = "no-leak", 0.75
        reasons.append("RSS grew and then stopped: a bounded cache or a warm-up, not a leak")
    else:
        kind, confidence = "no-leak", 0.7
        reasons.append(f"RSS is {pattern}")

    too_short = main is None or main.samples < MIN_SAMPLES or main.trend.duration_s < MIN_DURATION_S
    if kind in ("leak", "no-leak") and too_short and not steady:
        kind, confidence = "inconclusive", 0.3
        reasons.insert(0, "the run was too short to see a trend: give the target more work or a longer --duration")

    native_top = top is not None and "native" in top.stages and not top.visible_to_tracemalloc
    if kind in ("leak", "oom") and native_top and top is not None and top.trend != "failed":
        via = f" through {top.native_frames[0]}" if top.native_frames else ""
        reasons.append(
            f"the growth is native: {top.where()} allocates{via}, outside Python's allocators, "
            "so tracemalloc cannot see it (a C extension or library)"
        )
    elif kind == "leak" and traced_growth and focus and focus.pid in traced_growth:
        traced = traced_growth[focus.pid]
        if not significant(traced.growth_bytes, 0) and rate > 0:
            reasons.append(
                "the Python heap that tracemalloc sees does not grow with RSS: the growth is native "
                "(a C extension or library) or the allocator keeping freed memory"
            )
    confidence = round(min(confidence, 0.98), 2)
    summary = _summary(kind, pattern, rate, focus, top, to_limit, memory_limit, exit)
    return Verdict(kind, confidence, rate, pattern, summary, to_limit, tuple(reasons))


def _allocator_retention(grower: ProcessTrend, traced: Mapping[int, Trend] | None, native_live: int | None) -> bool:
    """RSS grows but the memory the program holds does not: both the traced heap and native live bytes
    (which together cover every allocation) account for less than a quarter of the growth."""
    if native_live is None or not traced or grower.pid not in traced:
        return False
    grown = grower.trend.end_bytes - grower.trend.start_bytes
    held = max(0, traced[grower.pid].growth_bytes) + native_live
    return grown > 0 and held < 0.25 * grown


def _seen_by(suspect: Suspect) -> str:
    return and_list(list(suspect.stages) or ["the stages"]) + " saw"


def _seconds_to_limit(pt: ProcessTrend, limit: int | None) -> float | None:
    if not limit or pt.trend.slope_bytes_per_s <= 0:
        return None
    used = pt.vms_now or pt.trend.end_bytes
    return max(0.0, (limit - used) / pt.trend.slope_bytes_per_s)


def _summary(
    kind: str,
    pattern: str,
    rate: float,
    focus: ProcessTrend | None,
    top: Suspect | None,
    to_limit: float | None,
    limit: int | None,
    exit: TargetExit,
) -> str:
    where = f"{Path(top.file).name}:{top.line} ({top.function})" if top else None
    if kind == "oom":
        if top is not None and top.trend == "failed":
            return (
                f"Out of memory: an allocation of {human_bytes(top.bytes)} failed at {where}; "
                f"the target {exit.describe()}."
            )
        text = f"Out of memory: the target {exit.describe()}"
        if where:
            text += f"; the most memory was held by {where}"
        return text + "."
    if kind == "leak":
        t = focus.trend if focus else None
        if t:
            text = f"Leak: RSS grows {pattern} at {human_rate(rate)}"
            text += f" ({human_bytes(t.start_bytes)} → {human_bytes(t.end_bytes)} in {t.duration_s:.0f} s)"
        else:
            text = f"Leak: the live Python heap grows at {human_rate(rate)}"
        if where and top:
            text += f"; {where} keeps {human_bytes(top.bytes)} more"
            if top.bytes_per_interval:
                text += f" (~{human_bytes(top.bytes_per_interval)} per interval)"
        if to_limit is not None and limit:
            text += f"; it would reach the {human_bytes(limit)} limit in ~{human_duration(to_limit)}"
        return text + "."
    if kind == "no-leak":
        t = focus.trend if focus else None
        if pattern == "plateau" and t:
            return (
                f"No leak: RSS rose to {human_bytes(t.end_bytes)} and stayed there from "
                f"{t.plateau_at_s or 0:.0f} s on (a plateau: bounded growth such as a cache)."
            )
        return f"No leak: RSS is {pattern} over the run."
    return "Inconclusive: the run was too short or too noisy to tell."
