"""Which source lines keep allocating memory that stays: analysis of a series of tracemalloc snapshots.

A site is the deepest frame in the user's own code on an allocation's traceback; the full traceback is
kept. A site grows when its live size rises across most intervals, not just between two snapshots.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from leakbench.analysis.trend import TEARDOWN_SHARE, linear_fit, rise_z

SiteKey = tuple[str, int]
RawFrame = tuple[str, int]  # (filename, lineno) as tracemalloc stores them
RawTrace = tuple[int, int, tuple[RawFrame, ...], int]  # (domain, size, frames newest-first, total_nframe)

MIN_SITE_GROWTH = 32 * 1024  # a site that gained less than this over the run is not reported as growing
MOST_INTERVALS = 0.5  # "grows across most intervals"
MIN_INTERVALS = 2  # a site seen growing over fewer intervals than this is not called steady
FITTED_SHARE = 0.5  # the fitted line must account for this share of a steady site's growth
RISE_Z = 1.645  # ... and its sizes must rise more surely than chance would order them (one-sided 5%)


@dataclass(frozen=True, slots=True)
class FrameRules:
    """Tells the target's own code from the standard library, installed packages and leakbench itself."""

    library_paths: tuple[str, ...]
    agent_dir: str
    launch_file: str = ""  # the agent's launch script: it sits under the target's frames, so it is neutral
    # A forked child's stack at the fork, newest first (the frame that called os.fork first): the parent's
    # work, on every traceback of the child until it returns from them (see own_frames).
    inherited: tuple[RawFrame, ...] = ()

    def is_agent(self, file: str) -> bool:
        return file.startswith(self.agent_dir) and file != self.launch_file

    def is_launch(self, file: str) -> bool:
        return file.startswith(self.agent_dir) or file.endswith(("runpy.py", "<frozen runpy>"))

    def is_user(self, file: str) -> bool:
        if file.startswith("<") or file.startswith(self.agent_dir):
            return False
        return not any(file.startswith(p) for p in self.library_paths)


@dataclass(frozen=True, slots=True)
class SiteTotal:
    size: int
    count: int
    traceback: tuple[RawFrame, ...]  # the largest traceback at this site, newest frame first


@dataclass(frozen=True, slots=True)
class SnapshotSites:
    t: float
    sites: Mapping[SiteKey, SiteTotal]
    total: int


@dataclass(frozen=True, slots=True)
class SiteGrowth:
    file: str
    line: int
    times: tuple[float, ...]
    sizes: tuple[int, ...]
    counts: tuple[int, ...]
    growth_bytes: int
    growth_count: int
    grew_in: float
    slope_bytes_per_s: float
    bytes_per_interval: float
    count_per_interval: float
    peak_bytes: int
    final_bytes: int
    final_count: int
    plateaued: bool
    traceback: tuple[RawFrame, ...]
    fitted_growth: float = 0.0  # what the straight line fitted from the site's first appearance rises by
    rise_z: float = 0.0  # how surely its sizes rise from its first appearance on (trend.rise_z)

    @property
    def steady(self) -> bool:
        """Grows across most intervals, has not levelled off, its trend line rises with it, and later sizes
        are higher than earlier ones more often than chance would have it: a site that fills and empties
        (temporaries caught at the snapshots) goes up in half of its intervals too, and on a long run half
        of its intervals is no evidence at all."""
        rises = self.fitted_growth >= FITTED_SHARE * self.growth_bytes
        return self.grew_in >= MOST_INTERVALS and not self.plateaued and rises and self.rise_z >= RISE_Z


IMPORTING = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def own_frames(frames: Sequence[RawFrame], inherited: Sequence[RawFrame], depth: int | None = None) -> int:
    """How many of a forked child's frames (newest first) are its own work, not the stack it inherited.

    A pool worker's every allocation sits under the line that started the pool (`with Pool(2) as pool:`),
    on the stack the child was forked on; that line is the parent's, and would take the worker's growth.
    The frames above the one that called os.fork are cut when they are the inherited ones (a child that
    returned from them is on a stack of its own again); that frame itself stays, since the child runs on in
    it. `depth` is the stack's whole depth when `frames` keeps only the newest (tracemalloc's limit)."""
    depth = len(frames) if depth is None else depth
    own = depth - len(inherited) + 1
    if not inherited or own < 1 or own >= len(frames):
        # not forked; or shallower than the fork (the child returned from the frames it was forked on); or
        # the traceback stops before it reaches them
        return len(frames)
    above = tuple(frames[own:])
    return own if above == tuple(inherited[1 : 1 + len(above)]) else len(frames)


def attribute(frames: Sequence[RawFrame], rules: FrameRules, depth: int | None = None) -> SiteKey | None:
    """The site of one allocation, or None when it is leakbench's own or made while importing a module.

    What a module allocates as it is imported is made once (code objects, module globals): it grows
    during a program's start-up, never with its work, and would drown the real growth of a short run.
    In a forked child only its own frames count (own_frames).
    """
    for file, _line in frames:
        if rules.is_agent(file) or file in IMPORTING:
            return None
    if rules.inherited:
        frames = frames[: own_frames(frames, rules.inherited, depth)]
    for file, line in frames:
        if rules.is_user(file):
            return (file, line)
    for file, line in frames:
        if not rules.is_launch(file):
            return (file, line)
    return frames[0] if frames else ("<unknown>", 0)


def aggregate(t: float, traces: Iterable[RawTrace], rules: FrameRules) -> SnapshotSites:
    """Group one snapshot's traces by site."""
    sizes: dict[SiteKey, list[int]] = {}
    best: dict[SiteKey, tuple[int, tuple[RawFrame, ...]]] = {}
    by_traceback: dict[tuple[RawFrame, ...], int] = {}
    key_of: dict[tuple[RawFrame, ...], SiteKey | None] = {}
    total = 0
    for _domain, size, frames, depth in traces:
        if frames in key_of:
            key = key_of[frames]
        else:
            key = key_of[frames] = attribute(frames, rules, depth)
        if key is None:
            continue
        total += size
        entry = sizes.get(key)
        if entry is None:
            sizes[key] = [size, 1]
        else:
            entry[0] += size
            entry[1] += 1
        by_traceback[frames] = by_traceback.get(frames, 0) + size
    for frames, size in by_traceback.items():
        key = key_of[frames]
        if key is None:
            continue
        if key not in best or size > best[key][0]:
            best[key] = (size, frames)
    sites = {key: SiteTotal(v[0], v[1], best[key][1]) for key, v in sizes.items()}
    return SnapshotSites(t, sites, total)


def growing_sites(
    series: Sequence[SnapshotSites], *, min_growth: int = MIN_SITE_GROWTH, teardown: SnapshotSites | None = None
) -> list[SiteGrowth]:
    """Sites whose live size grew over the series, most growth first.

    `teardown` is a snapshot taken after the target's code returned (at exit): what it still holds
    extends the series, but memory released by returning from main() does not undo a leak.
    """
    # The program freeing most of its heap in its last moments (a thread pool shut down with its threads'
    # memos, main()'s locals) is its teardown, not the shape of its work: as for RSS, it is left out.
    series = _without_final_collapse(series)
    if teardown is not None:
        series = [*series, _held_at_teardown(series[-1] if series else None, teardown)]
    if len(series) < 2:
        return []
    keys = set().union(*(s.sites.keys() for s in series))
    times = tuple(s.t - series[0].t for s in series)
    out = []
    for key in keys:
        row = [s.sites.get(key) for s in series]
        sizes = tuple(r.size if r else 0 for r in row)
        counts = tuple(r.count if r else 0 for r in row)
        growth = sizes[-1] - sizes[0]
        if growth < min_growth:
            continue
        # Count from the site's first appearance: a line that starts leaking after a long warm-up
        # (imports, loading data) is as steady as one that leaked from the first moment.
        first = max(0, next(i for i, s in enumerate(sizes) if s > 0) - 1)
        intervals = max(1, len(sizes) - 1 - first)
        grew = sum(1 for a, b in itertools.pairwise(sizes[first:]) if b > a)
        last = next(r for r in reversed(row) if r is not None)
        out.append(
            SiteGrowth(
                file=key[0],
                line=key[1],
                times=times,
                sizes=sizes,
                counts=counts,
                growth_bytes=growth,
                growth_count=counts[-1] - counts[0],
                grew_in=grew / intervals if intervals >= MIN_INTERVALS else 0.0,
                slope_bytes_per_s=(slope := linear_fit(times[first:], sizes[first:]).slope),
                fitted_growth=slope * (times[-1] - times[first]),
                rise_z=rise_z(sizes[first:]),
                bytes_per_interval=growth / intervals,
                count_per_interval=(counts[-1] - counts[0]) / intervals,
                peak_bytes=max(sizes),
                final_bytes=sizes[-1],
                final_count=counts[-1],
                plateaued=_plateaued(times, sizes, growth),
                traceback=last.traceback,
            )
        )
    out.sort(key=lambda g: (g.steady, g.growth_bytes), reverse=True)
    return out


TEARDOWN_COLLAPSE = 0.5  # the traced heap fell below half of its highest in the run's last readings


def _without_final_collapse(series: Sequence[SnapshotSites]) -> Sequence[SnapshotSites]:
    """The series without its last snapshots (a tenth of them at most) when the traced heap collapsed there:
    a dip of temporaries is not a collapse, and a level that churns keeps its ends."""
    keep = len(series)
    last = max(2, int(keep * (1 - TEARDOWN_SHARE)))
    while keep > last and series[keep - 1].total < TEARDOWN_COLLAPSE * max(
        s.total for s in series[keep // 2 : keep - 1]
    ):
        keep -= 1
    return series[:keep]


def _held_at_teardown(before: SnapshotSites | None, teardown: SnapshotSites) -> SnapshotSites:
    """Each site at the larger of its last running size and its size at teardown."""
    if before is None:
        return teardown
    sites = dict(teardown.sites)
    for key, total in before.sites.items():
        if key not in sites or sites[key].size < total.size:
            sites[key] = total
    return SnapshotSites(teardown.t, sites, max(teardown.total, before.total))


def peak_sites(series: Sequence[SnapshotSites], limit: int = 10) -> list[tuple[SiteKey, int, SiteTotal]]:
    """The sites that held the most memory at any snapshot: what was live when the process peaked."""
    best: dict[SiteKey, tuple[int, SiteTotal]] = {}
    for snap in series:
        for key, total in snap.sites.items():
            if key not in best or total.size > best[key][0]:
                best[key] = (total.size, total)
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:limit]
    return [(key, size, total) for key, (size, total) in ranked]


def _plateaued(times: Sequence[float], sizes: Sequence[int], growth: int) -> bool:
    """The site stopped growing for the last third of the run."""
    if len(sizes) < 6 or times[-1] <= 0:
        return False
    cut = times[-1] * (2 / 3)
    tail = [s for t, s in zip(times, sizes, strict=True) if t >= cut]
    return len(tail) >= 2 and (max(tail) - tail[0]) < 0.1 * growth
