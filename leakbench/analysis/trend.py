"""What the RSS of a process did: a line, a plateau, a sawtooth, a step, or nothing.

Pure functions over (time, bytes) series; the thresholds are named so the report can quote them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from leakbench.analysis.model import Pattern, Trend

MIB = 1024 * 1024
MIN_GROWTH_BYTES = 1 * MIB  # growth below this (or below MIN_GROWTH_FRACTION of the start) is noise
MIN_GROWTH_FRACTION = 0.03
WARMUP_FRACTION = 0.1  # the first part of a run is imports and set-up, not the steady state
WARMUP_MAX_S = 1.0
WARMUP_IMPORTS_MAX = 0.6  # imports that end later than this share of the run are not warm-up
PLATEAU_TAIL = 0.3  # a plateau: the last 30% of the run adds less than PLATEAU_SHARE of the growth
PLATEAU_SHARE = 0.1
STEP_JUMPS = 3  # a step: at most this many jumps carry STEP_SHARE of the growth
STEP_SHARE = 0.7
DROP_SHARE = 0.25  # a sawtooth drop: RSS falls by at least this share of its range


@dataclass(frozen=True, slots=True)
class Fit:
    slope: float
    intercept: float
    r_squared: float


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Least squares y = slope*x + intercept, with the coefficient of determination."""
    n = len(xs)
    if n < 2:
        return Fit(0.0, float(ys[0]) if ys else 0.0, 0.0)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx == 0:
        return Fit(0.0, mean_y, 0.0)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    r_squared = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return Fit(slope, intercept, r_squared)


def rise_z(values: Sequence[float]) -> float:
    """How surely a series rises, from the order of its values alone (the Mann-Kendall trend test): the
    pairs that went up minus those that went down, as a z-score against a series in random order.

    Neither the shape nor the spikes matter, only how consistently later values are higher: a leak that
    grows in steps and one that grows in a line both score high, while the temporaries a snapshot happens
    to catch leave a series that rose in half of its intervals near zero, however long. Ties count as
    neither (the variance is not reduced for them, which leans toward "not sure").
    """
    n = len(values)
    if n < 3:
        return 0.0
    s = 0
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            s += (b > a) - (b < a)
    variance = n * (n - 1) * (2 * n + 5) / 18
    if s == 0:
        return 0.0
    return (s - 1 if s > 0 else s + 1) / math.sqrt(variance)


def steady_part(
    times: Sequence[float], values: Sequence[int], warmup_end: float | None = None
) -> tuple[list[float], list[int]]:
    """Drop the warm-up at the start of the run: its first moments, and the imports when they are known."""
    if not times:
        return [], []
    start = times[0]
    span = times[-1] - start
    cut = start + min(span * WARMUP_FRACTION, WARMUP_MAX_S)
    if warmup_end is not None and warmup_end - start <= WARMUP_IMPORTS_MAX * span:
        cut = max(cut, warmup_end)
    pairs = [(t, v) for t, v in zip(times, values, strict=True) if t >= cut]
    if len(pairs) < 3:
        pairs = list(zip(times, values, strict=True))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _tail_level(values: Sequence[int]) -> int:
    tail = sorted(values[-max(1, len(values) // 20) :])
    return tail[len(tail) // 2]


def significant(growth: float, start: float) -> bool:
    return growth >= max(MIN_GROWTH_BYTES, MIN_GROWTH_FRACTION * start)


def analyse_series(times: Sequence[float], values: Sequence[int], warmup_end: float | None = None) -> Trend:
    """Classify one memory series (RSS, or a live-heap series) and measure its growth."""
    if len(times) < 2:
        level = int(values[0]) if values else 0
        return Trend("flat", 0.0, 0.0, 0, level, level, level, 0.0)
    ts, vs = steady_part(times, values, warmup_end)
    fit = linear_fit(ts, vs)
    start = vs[0]
    end = _tail_level(vs)
    peak = max(values)
    low = min(vs)
    growth = end - start
    duration = ts[-1] - ts[0]
    span = peak - low
    drops = _count_drops(vs, span) if significant(span, start) else 0
    pattern: Pattern
    plateau_at: float | None = None
    if drops >= 3:
        pattern = "sawtooth"
    elif not significant(growth, start):
        pattern = "flat"
    elif _is_step(vs, growth) and fit.r_squared < 0.9:
        pattern = "step"
    elif _is_plateau(ts, vs, growth):
        pattern = "plateau"
        plateau_at = _plateau_time(ts, vs, end)
    else:
        pattern = "linear"
    if pattern == "flat" and warmup_end is not None:
        # Flat after the warm-up, but it rose after the imports ended and before the warm-up cut: work that
        # filled something (a cache) quickly and stopped. That is a plateau, reached early.
        after_imports = [(t, v) for t, v in zip(times, values, strict=True) if warmup_end <= t < ts[0]]
        if after_imports and significant(end - after_imports[0][1], after_imports[0][1]):
            pattern = "plateau"
            growth = end - after_imports[0][1]
            plateau_at = _plateau_time(
                [t for t, _ in after_imports] + list(ts), [v for _, v in after_imports] + list(vs), end
            )
    slope = fit.slope if pattern in ("linear", "step", "sawtooth") else _tail_slope(ts, vs)
    return Trend(
        pattern=pattern,
        slope_bytes_per_s=slope,
        r_squared=fit.r_squared,
        growth_bytes=int(growth),
        start_bytes=int(start),
        end_bytes=int(end),
        peak_bytes=int(peak),
        duration_s=duration,
        plateau_at_s=plateau_at,
        drops=drops,
    )


def without_overhead(times: Sequence[float], values: Sequence[int], overhead: Sequence[tuple[float, int]]) -> list[int]:
    """Subtract a profiler's own memory (sampled at other moments) from an RSS series."""
    if not overhead:
        return list(values)
    out = []
    j = 0
    for t, v in zip(times, values, strict=True):
        while j + 1 < len(overhead) and overhead[j + 1][0] <= t:
            j += 1
        out.append(v - overhead[j][1] if overhead[j][0] <= t else v)
    return out


TEARDOWN_SHARE = 0.1  # the last tenth of a run may be main() returning and freeing what it held
TEARDOWN_DROP = 0.9


def without_final_drop(times: Sequence[float], values: Sequence[int]) -> tuple[list[float], list[int]]:
    """Leave out a drop at the very end of a series: main() returning frees its locals (a big index, a
    cache) before the target's end is marked, and that is not the shape of its work."""
    keep = len(values)
    last = max(2, int(len(values) * (1 - TEARDOWN_SHARE)))  # two points at least: one to drop from
    while keep > last and values[keep - 1] < TEARDOWN_DROP * max(values[keep // 2 : keep - 1]):
        keep -= 1
    return list(times[:keep]), list(values[:keep])


def trough_growth(values: Sequence[int]) -> int:
    """For a sawtooth: how much the lows rose from the first third to the last third."""
    third = max(1, len(values) // 3)
    return min(values[-third:]) - min(values[:third])


def _count_drops(values: Sequence[int], span: int) -> int:
    threshold = DROP_SHARE * span
    drops = 0
    high = values[0]
    for value in values[1:]:
        if high - value >= threshold:
            drops += 1
            high = value
        else:
            high = max(high, value)
    return drops


def _is_plateau(times: Sequence[float], values: Sequence[int], growth: float) -> bool:
    t_cut = times[0] + (times[-1] - times[0]) * (1 - PLATEAU_TAIL)
    before = [v for t, v in zip(times, values, strict=True) if t <= t_cut]
    after = [v for t, v in zip(times, values, strict=True) if t >= t_cut]
    if len(after) < 3 or not before:
        return False
    tail_growth = _tail_level(after) - after[0]
    return tail_growth < PLATEAU_SHARE * growth and max(after) - min(after) < 0.5 * growth


def _plateau_time(times: Sequence[float], values: Sequence[int], level: int) -> float:
    start = values[0]
    for t, v in zip(times, values, strict=True):
        if v - start >= 0.9 * (level - start):
            return t
    return times[-1]


def _is_step(values: Sequence[int], growth: float) -> bool:
    jumps = sorted((b - a for a, b in itertools.pairwise(values)), reverse=True)
    return sum(j for j in jumps[:STEP_JUMPS] if j > 0) >= STEP_SHARE * growth


def _tail_slope(times: Sequence[float], values: Sequence[int]) -> float:
    t_cut = times[0] + (times[-1] - times[0]) * (1 - PLATEAU_TAIL)
    pairs = [(t, v) for t, v in zip(times, values, strict=True) if t >= t_cut]
    if len(pairs) < 2:
        return 0.0
    return linear_fit([p[0] for p in pairs], [p[1] for p in pairs]).slope
