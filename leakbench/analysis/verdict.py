"""Join the stages' findings into one verdict: leak, no-leak, oom or inconclusive, with a confidence."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from leakbench.analysis.model import Retention, Role, Suspect, TargetExit, Trend, Verdict, VerdictKind
from leakbench.analysis.trend import (
    MIN_GROWTH_BYTES,
    PLATEAU_SHARE,
    rise_z,
    significant,
    trough_growth,
    without_final_drop,
)
from leakbench.units import and_list, human_bytes, human_duration, human_rate

MIN_SAMPLES = 5
MIN_DURATION_S = 2.0  # a steady part shorter than this is too thin to call a trend either way
SMALL_LEAK = 256 * 1024
HEAP_LINE_R2 = 0.6  # the live heap's rise is a line, not temporaries caught at the sampled moments
SURE_RISE_Z = 3.0  # a live heap rising over the whole run, surer than chance by far (one-sided 0.13%)
LATE_RISE_Z = 2.33  # ... and still rising over its second half (one-sided 1%)
SURE_SHARE = 0.9  # a line that grew in this share of the intervals grew surely, however little
STOPPED_SHARE = 0.25  # the least-disturbed run's tail grows slower than this share of the site's rate: stopped


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
        # the lows rising over the run after its start-up (the imports fill the first samples)
        series = pt.rss_series[len(pt.rss_series) // 5 :]
        return t.slope_bytes_per_s > 0 and significant(trough_growth(series), t.start_bytes)
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
    retention: Sequence[Retention] = (),
    judged_on: str | None = None,
    disturbed: Sequence[tuple[str, Sequence[ProcessTrend]]] = (),
    ran_native: bool | None = None,
    roles: Mapping[int, Role] | None = None,
    judged_heap: Sequence[ProcessTrend] = (),
    stops: Mapping[tuple[str, int, int], str] | None = None,
) -> Verdict:
    """The verdict, with the reasons that led to it, most important first.

    A leak is a site (a line, or a native stack attributed to one) whose retained bytes keep rising with the
    work after the warm-up, in most intervals (`Suspect.trend == "steady"`); RSS alone never makes one.
    `roles` says which pid (of any run) is a worker (child); `judged_heap`: the live-heap trends of the
    least-disturbed run when the native tracker measured them; `stops`: the steady sites whose growth
    stopped in that run (stopped_sites), worked out here when not given.
    `processes` are the trends of the least-disturbed run (`judged_on` names it): its shape wins over the
    slower runs' (`disturbed`) when they disagree. A root with a bound (an lru_cache with a maxsize) is a
    cache filling toward it, never a leak. `native_live_bytes`: what the native tracker saw allocated during
    the run and still live at its end (None when it did not run): RSS that grows while neither tracemalloc's
    heap nor the native live bytes do is the allocator keeping freed memory, not a leak.
    """
    reasons: list[str] = []
    kind: VerdictKind
    ran_native = native_live_bytes is not None if ran_native is None else ran_native
    main = next((p for p in processes if p.role == "main"), processes[0] if processes else None)
    growers = sorted((p for p in processes if growing(p)), key=lambda p: p.trend.slope_bytes_per_s, reverse=True)
    focus = growers[0] if growers else main
    bounded = bounded_root(retention)
    # a line whose fitted rate falls is not growing with the work, whatever share of intervals it rose in
    candidates = [s for s in suspects if s.trend == "steady" and s.bytes >= SMALL_LEAK and s.rate_bytes_per_s >= 0]
    steady = [] if bounded is not None else candidates
    pattern = focus.trend.pattern if focus else "flat"
    rate = focus.trend.slope_bytes_per_s if focus else 0.0
    failure = target_failed(exit)
    too_short = main is None or main.samples < MIN_SAMPLES or main.trend.duration_s < MIN_DURATION_S
    # A steady line whose growth stopped in the least-disturbed run (a cache that was still filling under
    # the slower instruments, a one-time load that tracemalloc's snapshots caught mid-way) is not the leak
    if stops is None:
        stops = stopped_sites(steady, processes, disturbed, judged_on, roles, judged_heap) if disturbed else {}
    live = [s for s in steady if site_key(s) not in stops]
    stopped = stops[site_key(steady[0])] if steady and not live else None
    # ... but when what the processes hold keeps rising after it (or with no steady line at all, behind an
    # RSS that a big one-time load makes look flat), something grows: a slow leak whose line tracemalloc's
    # few snapshots after that load saw grow once or twice
    still = _still_held(steady[0] if steady else None, judged_heap, roles) if not live and bounded is None else None
    late = _late_site(suspects, still.role, stops, roles) if still is not None else None
    top = next((s for s in suspects if site_key(s) not in stops), suspects[0] if suspects else None)
    # A line that grew in nearly every interval, but by less than SMALL_LEAK over the run: a slow leak
    # watched for too short a time (an attach of a few seconds), or a warm-up; not a verdict either way
    small = next(
        (s for s in suspects if s.trend == "steady" and s.grew_in >= SURE_SHARE and 0 < s.bytes < SMALL_LEAK), None
    )
    where_from = f" in {judged_on}" if judged_on and disturbed else ""
    traced_growth = _by_role(traced_growth or {}, processes, roles or {})

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
    elif failure and too_short and not steady:
        kind, confidence = "inconclusive", 0.9
        reasons.append(f"{failure}, before it did enough work to judge: fix that and run again")
    elif bounded is not None and (candidates or growers):
        kind, confidence, pattern = "no-leak", 0.8, "plateau"
        reasons.append(f"the growth is held by {bounded.root}, which is bounded: {bound_text(bounded, candidates)}")
        rate = 0.0
    elif still is not None and (stopped is not None or not growers):
        kind, confidence, pattern = "leak", 0.65 if late is not None else 0.55, "linear"
        reasons.append(
            f"what the {'workers' if still.role == 'child' else 'process'} held kept rising after its start-up at "
            f"{human_rate(_held_rate(still))} in the native tracker's run (its live heap), while RSS looked "
            f"{pattern}{where_from}"
        )
        if late is not None:
            reasons.append(
                f"{_seen_by(late)} {late.where()} keep {human_bytes(late.bytes)} more, "
                f"{human_bytes(late.last_growth)} of it in the last interval"
            )
        if stopped is not None:
            s0 = steady[0]
            reasons.append(f"{Path(s0.file).name}:{s0.line} grew only while the program started: a one-time load")
        rate, focus, top = _held_rate(still), None, late
    elif stopped is not None:
        kind, confidence, pattern = "no-leak", 0.7, "plateau"
        reasons.append(stopped)
        rate = 0.0
    elif live:
        kind = "leak"
        s = live[0]
        confidence = 0.6 + 0.2 * s.grew_in + (0.15 if growers else 0.0)
        if s.keeps:  # a line backrefs found storing what a library line allocates (findings.with_keepers)
            reasons.append(
                f"{s.where()} stores what {s.keeps} allocates in the root backrefs followed: "
                f"{human_bytes(s.bytes)} more, growing in {s.grew_in:.0%} of intervals"
            )
        else:
            reasons.append(
                f"{_seen_by(s)} {s.where()} keep {human_bytes(s.bytes)} more, growing in {s.grew_in:.0%} of intervals"
            )
        if growers:
            reasons.append(f"RSS of pid {growers[0].pid} grows{where_from} ({pattern}, {human_rate(rate)})")
        else:
            reasons.append(f"RSS is {pattern}{where_from}: its growth is hidden by the start-up or too small yet")
            rate = s.rate_bytes_per_s
            held = [h for h in judged_heap if _live_heap_grows(h)]
            if held:
                rate = max(h.trend.slope_bytes_per_s for h in held)
                reasons.append(f"what the processes hold grows at {human_rate(rate)}{where_from} (native live heap)")
            pattern = "linear"
            focus = None
    elif growers and _allocator_retention(growers[0], traced_growth, native_live_bytes):
        kind, confidence = "no-leak", 0.6
        grown = growers[0].trend.end_bytes - growers[0].trend.start_bytes
        reasons.append(
            f"RSS grew by {human_bytes(grown)} while the live heap did not (tracemalloc's traced memory stayed "
            f"flat and the native tracker saw {human_bytes(native_live_bytes or 0)} still live): the allocator "
            "keeps freed memory (fragmentation, arenas), this is not a leak"
        )
        pattern = "plateau" if growers[0].trend.pattern == "plateau" else growers[0].trend.pattern
        rate = 0.0
    elif growers and _heap_grows(growers[0], traced_growth):
        kind, confidence = "leak", 0.6
        traced = traced_growth[growers[0].pid]
        reasons.append(
            f"the live Python heap grows ({human_bytes(traced.growth_bytes)}, {traced.pattern}) with RSS, "
            "spread over many lines rather than one"
        )
    elif growers and any(_live_heap_grows(h) and h.role == growers[0].role for h in judged_heap):
        kind, confidence = "leak", 0.6
        holder = max((h for h in judged_heap if _live_heap_grows(h)), key=lambda h: h.trend.slope_bytes_per_s)
        reasons.append(
            f"what the process holds grows at {human_rate(holder.trend.slope_bytes_per_s)} with RSS (the native "
            "tracker's live heap), spread over many small allocations rather than one line"
        )
    elif growers and not ran_native and pattern == "linear" and focus is not None and focus.trend.r_squared >= 0.9:
        kind, confidence = "inconclusive", 0.5
        reasons.append(
            f"RSS grows linear ({human_rate(rate)}){where_from} but no Python line's live memory rises with it: "
            "the growth may be in C code, which only the native tracker sees: run with --playbook native"
        )
    elif growers:
        kind, confidence = "no-leak", 0.6
        reasons.append(
            f"RSS rose ({pattern}){where_from} but no site's retained memory kept rising with the work: one-time "
            "allocations (imports, library buffers, caches filled once), temporary peaks or the allocator keeping "
            "freed memory"
        )
        pattern = "plateau" if pattern in ("step", "plateau") else pattern
        rate = 0.0
    elif pattern == "plateau":
        kind, confidence = "no-leak", 0.75
        reasons.append("RSS grew and then stopped: a bounded cache or a warm-up, not a leak")
    elif small is not None:
        kind, confidence = "inconclusive", 0.4
        reasons.append(
            f"{_seen_by(small)} {small.where()} keep {human_bytes(small.bytes)} more, growing in "
            f"{small.grew_in:.0%} of intervals: too little over this run to call a leak (RSS is {pattern}); "
            "watch it longer (a longer --duration)"
        )
    else:
        kind, confidence = "no-leak", 0.7
        reasons.append(f"RSS is {pattern}")

    if (
        kind in ("leak", "no-leak", "inconclusive")
        and too_short
        and not steady
        and not (failure and kind == "inconclusive")
    ):
        kind, confidence = "inconclusive", 0.3
        reasons.insert(
            0,
            "the run was too short to see a trend: give the target more work (a bigger input, more iterations) "
            "or a longer --duration",
        )
    if failure and kind != "inconclusive":
        reasons.insert(0, failure)

    native_top = top is not None and "native" in top.stages and not top.visible_to_tracemalloc
    if kind in ("leak", "oom") and native_top and top is not None and top.trend != "failed":
        via = f" through {top.native_frames[0]}" if top.native_frames else ""
        share = c_level_note(top)
        reasons.append(
            f"the growth is native: {top.where()} allocates{via}, outside Python's allocators, "
            "so tracemalloc cannot see it (a C extension or library)" + (f"; {share}" if share else "")
        )
    elif kind == "leak" and traced_growth and focus and focus.pid in traced_growth:
        traced = traced_growth[focus.pid]
        if not significant(traced.growth_bytes, 0) and rate > 0 and not steady:
            reasons.append(
                "the Python heap that tracemalloc sees does not grow with RSS: the growth is native "
                "(a C extension or library) or the allocator keeping freed memory"
            )
    if kind == "leak" or kind == "no-leak":
        for label, others in disturbed:
            other = _shape(others)
            if other and other != pattern and pattern in ("plateau", "flat", "linear") and judged_on:
                reasons.append(
                    f"the shape is read on {judged_on}, the least disturbed: {label} ran slower and looked "
                    f"{other} there"
                )
                break
    confidence = round(min(confidence, 0.98), 2)
    to_limit = _seconds_to_limit(focus, memory_limit) if focus and rate > 0 and kind == "leak" else None
    shown = top if kind != "no-leak" else None
    summary = _summary(kind, pattern, rate, focus, shown, to_limit, memory_limit, exit, roles or {})
    if kind == "no-leak" and bounded is not None:
        summary = f"No leak: {bound_text(bounded, candidates)}."
    elif kind == "no-leak" and stopped is not None:
        summary = f"No leak: {stopped}."
    elif kind == "inconclusive" and failure and reasons[0].startswith(failure):
        summary = reasons[0][0].upper() + reasons[0][1:] + "."
    elif kind == "inconclusive" and reasons:
        summary = "Inconclusive: " + reasons[0] + "."
    if failure and not summary.startswith("The target"):
        summary = failure[0].upper() + failure[1:] + ". " + summary
    return Verdict(kind, confidence, rate, pattern, summary, to_limit, tuple(reasons))


def target_failed(exit: TargetExit) -> str | None:
    """What went wrong with the target itself, in words; None when it ran (or was stopped) normally."""
    if exit.status == "exception":
        return f"the target raised {exit.exception_type}: {exit.exception_message}"
    if exit.status == "killed" and exit.signal not in (9, 2, 15):
        return f"the target crashed ({exit.describe()})"
    if exit.status == "ok" and exit.code not in (0, None):
        return f"the target exited with code {exit.code}"
    return None


def bounded_root(retention: Sequence[Retention]) -> Retention | None:
    """The root that holds most of the growth, when it is bounded and no unbounded root holds as much.

    A bounded cache inside the standard library (typing's own lru_caches) never explains a program's growth:
    a chain that ends there was found from the wrong end, and is not taken as the program's bound.
    """
    rooted = [
        r for r in retention if r.root and not r.root.startswith(("referenced from", "a chain")) and not _stdlib_root(r)
    ]
    if not rooted:
        return None
    biggest = max(rooted, key=lambda r: r.bytes_growth)
    if biggest.bound is None:
        return None
    rivals = [r for r in rooted if r.bound is None and r.bytes_growth >= 0.25 * biggest.bytes_growth]
    return None if rivals else biggest


def _stdlib_root(r: Retention) -> bool:
    """'cache of functools.lru_cache on typing._SpecialForm.__getitem__': a root in a standard module."""
    words = r.root.rsplit(" on ", 1)[-1] if " on " in r.root else r.root.split(" ")[-1]
    module = words.split(".", 1)[0]
    return bool(module) and module in sys.stdlib_module_names and module != "__main__"


def bound_text(root: Retention, suspects: Sequence[Suspect]) -> str:
    """'fills toward 4,096 entries × ~20 KiB ≈ 80 MiB; plateau expected'."""
    bound = root.bound or 0
    text = f"{root.root} fills toward {bound:,} entries"
    if root.count_growth <= 0:  # one container grown in size (a deque window): no size per entry to multiply
        return text + "; plateau expected"
    each = root.bytes_growth / root.count_growth
    if suspects:
        each = max(each, suspects[0].bytes / root.count_growth)
    if each >= 1:
        text += f" × ~{human_bytes(int(each))} ≈ {human_bytes(int(each * bound))}"
    return text + "; plateau expected"


def _shape(processes: Sequence[ProcessTrend]) -> str | None:
    grows = [p for p in processes if growing(p)]
    if grows:
        return max(grows, key=lambda p: p.trend.slope_bytes_per_s).trend.pattern
    main = next((p for p in processes if p.role == "main"), None)
    return main.trend.pattern if main else None


def site_key(s: Suspect) -> tuple[str, int, int]:
    return (s.file, s.line, s.pid)


def stopped_sites(
    steady: Sequence[Suspect],
    processes: Sequence[ProcessTrend],
    disturbed: Sequence[tuple[str, Sequence[ProcessTrend]]],
    judged_on: str | None = None,
    roles: Mapping[int, Role] | None = None,
    heap: Sequence[ProcessTrend] = (),
) -> dict[tuple[str, int, int], str]:
    """The steady sites whose growth stopped in the least-disturbed run, with the reason in words."""
    out = {}
    for s in steady:
        why = _stopped_in_judged_run(s, processes, disturbed, judged_on, roles, heap)
        if why is not None:
            out[site_key(s)] = why
    return out


def _in_child(
    site: Suspect, roles: Mapping[int, Role] | None, disturbed: Sequence[tuple[str, Sequence[ProcessTrend]]]
) -> bool:
    return (roles or {}).get(site.pid) == "child" or any(
        p.pid == site.pid and p.role == "child" for _label, others in disturbed for p in others
    )


def _stopped_in_judged_run(
    site: Suspect,
    processes: Sequence[ProcessTrend],
    disturbed: Sequence[tuple[str, Sequence[ProcessTrend]]],
    judged_on: str | None = None,
    roles: Mapping[int, Role] | None = None,
    heap: Sequence[ProcessTrend] = (),
) -> str | None:
    """The site grew steadily in a slower run, but in the least-disturbed run the memory of its process
    levelled off, or rose far slower than the site did: a cache that was still filling under the slower
    instruments, or a one-time load that tracemalloc's snapshots caught while it ran. None when it did not
    stop.

    Each run has its own pids, so the site's process is matched by role (main, or the children together).
    """
    in_child = _in_child(site, roles, disturbed)
    mine = [p for p in processes if (p.role == "child") == in_child]
    if not mine or any(p.samples < MIN_SAMPLES or p.trend.duration_s < MIN_DURATION_S for p in mine):
        return None
    # Positive evidence that it stopped: the memory rose and levelled off. A flat RSS only says the growth
    # is too small to show against the process's size (a slow leak), not that it stopped.
    # A step whose last part is flat (a one-time load, then the work) has levelled off as well.
    levelled = [p for p in mine if p.trend.pattern == "plateau" or (p.trend.pattern == "step" and _tail_flat(p))]
    if not levelled or any(growing(p) for p in mine if p not in levelled):
        return None
    tail = max(_tail_rate(p) if p.trend.pattern == "step" else p.trend.slope_bytes_per_s for p in mine)
    # What the processes held (the native tracker's live heap) may keep rising behind a big one-time load
    # that RSS's relative threshold calls a plateau: the site stopped only if it grew far faster than that.
    tail = max(
        [tail] + [h.trend.slope_bytes_per_s for h in heap if (h.role == "child") == in_child and _live_heap_grows(h)]
    )
    rate = max(site.rate_bytes_per_s, site.bytes / max(max(p.trend.duration_s for p in mine), 1.0))
    if tail >= STOPPED_SHARE * rate:
        return None
    p = max(mine, key=lambda p: p.trend.end_bytes)
    when = f" from {p.trend.plateau_at_s:.0f} s on" if p.trend.plateau_at_s is not None else ""
    slower = disturbed[0][0] if disturbed else "the slower run"
    judge = judged_on or "the least-disturbed run"
    level = "stayed flat" if p.trend.pattern == "flat" else f"levelled off at {human_bytes(p.trend.end_bytes)}{when}"
    return (
        f"{Path(site.file).name}:{site.line} kept growing in {slower}, but RSS {level} in {judge}, which "
        "slows the target least: growth toward a steady state (a cache filling, a warm-up), not a leak"
    )


def _still_held(
    site: Suspect | None, heap: Sequence[ProcessTrend], roles: Mapping[int, Role] | None
) -> ProcessTrend | None:
    """The live heap (native tracker) of the site's kind of process (any, without a site) still rising after
    its start-up, if one is: the fastest."""
    in_child = (roles or {}).get(site.pid) == "child" if site is not None else None
    rising = [h for h in heap if in_child in (None, h.role == "child") and _live_heap_grows(h)]
    return max(rising, key=lambda h: h.trend.slope_bytes_per_s) if rising else None


def _late_site(
    suspects: Sequence[Suspect],
    role: Role,
    stops: Mapping[tuple[str, int, int], str],
    roles: Mapping[int, Role] | None,
) -> Suspect | None:
    """The line that grew most over the last interval of tracemalloc's run, in that kind of process: with a
    slow leak behind a big one-time load, tracemalloc's snapshots may see it grow only once or twice, so
    it is not steady there, but it is what was still growing at the end."""
    mine = [
        s
        for s in suspects
        if site_key(s) not in stops
        and (roles or {}).get(s.pid, "main") == role
        and s.last_growth >= SMALL_LEAK
        and s.rate_bytes_per_s >= 0
    ]
    return max(mine, key=lambda s: s.last_growth) if mine else None


def c_level_note(s: Suspect) -> str | None:
    """'94.5 MiB of 94.8 MiB is C-level (not seen by tracemalloc)' for a line most of whose growth is native."""
    if not s.native_bytes or s.visible_to_tracemalloc:
        return None
    invisible = max(0, s.native_bytes - s.tracemalloc_bytes)
    total = invisible + min(s.tracemalloc_bytes, s.native_bytes)
    return f"{human_bytes(invisible)} of {human_bytes(total)} is C-level (not seen by tracemalloc)"


def _tail_rate(p: ProcessTrend) -> float:
    """How fast RSS rose over the last part of the run (between the medians of two windows of its samples)."""
    values = without_final_drop(range(len(p.rss_series)), p.rss_series)[1]
    n = len(values)
    if n < 10:
        return p.trend.slope_bytes_per_s
    before = sorted(values[int(0.55 * n) : int(0.7 * n)])
    after = sorted(values[int(0.85 * n) :])
    span = 0.3 * p.trend.duration_s or 1.0
    return (after[len(after) // 2] - before[len(before) // 2]) / span


def _tail_flat(p: ProcessTrend) -> bool:
    """The last part of the run added little next to the whole growth."""
    return _tail_rate(p) * 0.3 * p.trend.duration_s < PLATEAU_SHARE * max(p.trend.growth_bytes, 1)


def _by_role(
    traced: Mapping[int, Trend], processes: Sequence[ProcessTrend], roles: Mapping[int, Role]
) -> dict[int, Trend]:
    """Tracemalloc's heap trends keyed by the judged run's pids: each run has its own pids, so the main
    process is matched to the main process, a worker to the worker whose heap grew most."""
    out = dict(traced)
    by_role: dict[str, Trend] = {}
    for pid, t in traced.items():
        role = roles.get(pid, "main")
        if role not in by_role or t.growth_bytes > by_role[role].growth_bytes:
            by_role[role] = t
    for p in processes:
        if p.pid not in out and p.role in by_role:
            out[p.pid] = by_role[p.role]
    return out


def _live_heap_grows(h: ProcessTrend) -> bool:
    """The native tracker's live heap rose in a line after the warm-up: exact accounting, no allocator
    noise, so a rise of a few MiB counts even behind a big one-time load (which RSS's relative threshold
    would call flat). Read from the order of its values too, so that main() starting to free its locals in
    the last readings does not hide a rise that went on in all the others."""
    t = h.trend
    if t.pattern == "sawtooth":
        return False
    lined = t.slope_bytes_per_s > 0 and t.growth_bytes >= MIN_GROWTH_BYTES and t.r_squared >= HEAP_LINE_R2
    if t.pattern != "plateau" and lined:
        return True
    return _still_rising(h.rss_series)


def _still_rising(values: Sequence[int]) -> bool:
    """A series that rises surely over its whole length and still over its second half, by at least
    MIN_GROWTH_BYTES between its first and last quarters (medians: a last reading or two of teardown, or
    a temporary, moves neither). A series that rose and then levelled off fails the second half."""
    n = len(values)
    if n < 12:
        return False
    quarter = n // 4
    late = values[n // 2 :]
    third = max(1, len(late) // 3)
    return (
        _median(values[-quarter:]) - _median(values[:quarter]) >= MIN_GROWTH_BYTES
        and _median(late[-third:]) - _median(late[:third]) >= MIN_GROWTH_BYTES // 4
        and rise_z(values) >= SURE_RISE_Z
        and rise_z(late) >= LATE_RISE_Z
    )


def _held_rate(h: ProcessTrend) -> float:
    """How fast a live heap rose: its fitted slope when that is a line, else between the medians of its first
    and last quarters (spread over three quarters of its span), which a final reading or two does not move."""
    t = h.trend
    if (t.slope_bytes_per_s > 0 and t.r_squared >= HEAP_LINE_R2) or len(h.rss_series) < 8:
        return t.slope_bytes_per_s
    quarter = len(h.rss_series) // 4
    rise = _median(h.rss_series[-quarter:]) - _median(h.rss_series[:quarter])
    return rise / max(0.75 * t.duration_s, 1e-3)


def order_by_stops(suspects: Sequence[Suspect], stops: Mapping[tuple[str, int, int], str]) -> list[Suspect]:
    """The suspects with the steady ones whose growth stopped in the least-disturbed run moved last and
    marked as a plateau: they grew toward a level, and are not the line to change."""
    kept = [s for s in suspects if site_key(s) not in stops]
    moved = [replace(s, trend="plateau") for s in suspects if site_key(s) in stops]
    return kept + moved


def _median(values: Sequence[int]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _heap_grows(grower: ProcessTrend, traced: Mapping[int, Trend] | None) -> bool:
    """The live heap tracemalloc traced grows in a line with RSS: retained Python memory, spread thin."""
    t = (traced or {}).get(grower.pid)
    return (
        t is not None
        and t.pattern == "linear"
        and t.r_squared >= 0.9
        and significant(t.growth_bytes, 0)
        and t.growth_bytes >= 0.25 * max(1, grower.trend.end_bytes - grower.trend.start_bytes)
    )


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
    roles: Mapping[int, Role],
) -> str:
    where = f"{Path(top.file).name}:{top.line} ({top.function})" if top else None
    if top is not None and where and roles.get(top.pid) == "child":
        where += f" in worker process {top.pid}"
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
        if t and focus is not None and focus.role == "child":
            text = f"Leak: the RSS of a worker process (pid {focus.pid}, child) grows {pattern} at {human_rate(rate)}"
            text += f" ({human_bytes(t.start_bytes)} → {human_bytes(t.end_bytes)} in {t.duration_s:.0f} s)"
        elif t:
            text = f"Leak: RSS grows {pattern} at {human_rate(rate)}"
            text += f" ({human_bytes(t.start_bytes)} → {human_bytes(t.end_bytes)} in {t.duration_s:.0f} s)"
        else:
            text = f"Leak: the live heap grows at {human_rate(rate)}"
        if where and top:
            text += f"; {where} keeps {human_bytes(top.bytes)} more"
            if top.bytes_per_interval and top.visible_to_tracemalloc and top.trend == "steady":
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
