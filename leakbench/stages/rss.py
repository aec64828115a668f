"""Stage `rss`: does memory grow, how fast, and in what shape; sampled from outside the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from leakbench.analysis.model import StageReport, Trend, to_jsonable
from leakbench.analysis.trend import (
    WARMUP_IMPORTS_MAX,
    analyse_series,
    linear_fit,
    steady_part,
    without_final_drop,
    without_overhead,
)
from leakbench.launcher import BudgetPolicy, TargetRun
from leakbench.report.charts import Line, line_chart
from leakbench.stages.base import Contribution, StageContext
from leakbench.units import human_bytes, human_rate


@dataclass(frozen=True, slots=True)
class RssParams:
    interval: float = 0.1  # seconds between samples
    # a target run of its own with nothing but RSS sampling: the least-disturbed run, on which the verdict
    # reads the shape (a cache that fills in seconds plainly may still be filling under the profilers)
    alone: bool = False
    budget: float = 60.0  # with `alone`: stop a target still running after this many seconds (0: never)


class RssStage:
    kind: ClassVar[str] = "rss"
    summary: ClassVar[str] = "RSS of the target and its children over time: leak, plateau, sawtooth or flat"
    own_run: ClassVar[bool] = False
    Params = RssParams

    def __init__(self, params: RssParams) -> None:
        self.params = params
        self.exclusive = params.alone

    def contribute(self, ctx: StageContext) -> Contribution:
        policies = (BudgetPolicy(self.params.budget),) if self.params.alone else ()
        return Contribution(rss_interval=self.params.interval, stop_policies=policies)

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        if run is None or not run.series:
            return StageReport(self.kind, "failed", "no RSS samples: the target ended before the first one")
        trends, adjusted, warmups = run_trends(run)
        main = next((s for s in run.series if s.role == "main"), run.series[0])
        lines = [Line(f"{s.role} {s.pid}", s.times, s.rss) for s in run.series]
        if adjusted[main.pid] != list(main.rss):
            lines.append(Line(f"main {main.pid} without tracemalloc's own memory", main.times, adjusted[main.pid]))
        ts, vs = steady_part(main.times, adjusted[main.pid], warmups[main.pid])
        fit = linear_fit(ts, vs)
        fit_line = (ts[0], ts[-1], fit.intercept + fit.slope * ts[0], fit.intercept + fit.slope * ts[-1])
        png, _svg = line_chart(
            lines,
            ctx.run_dir / "images" / ("rss-alone" if self.params.alone else "rss"),
            title="RSS over time",
            limit=ctx.target.memory_limit_bytes,
            fit=fit_line if trends[main.pid].pattern in ("linear", "step") else None,
        )
        grower = max(trends.items(), key=lambda kv: kv[1].slope_bytes_per_s)
        t = trends[main.pid]
        message = "a run with RSS sampling alone; " if self.params.alone else ""
        message += (
            f"main process: {t.pattern}, {human_rate(t.slope_bytes_per_s)} "
            f"({human_bytes(t.start_bytes)} → {human_bytes(t.end_bytes)} over {t.duration_s:.1f} s)"
        )
        if len(trends) > 1:
            message += f"; {len(trends) - 1} child process(es), fastest grower pid {grower[0]}"
        return StageReport(
            self.kind,
            "ok",
            message,
            data={
                "trends": {str(pid): to_jsonable(tr) for pid, tr in trends.items()},
                "main_pid": main.pid,
                "chart": str(png.relative_to(ctx.run_dir)),
                "samples": sum(len(s.times) for s in run.series),
                "warmup_end_s": {str(pid): w for pid, w in warmups.items()},
                "profiler_overhead_removed": any(adjusted[s.pid] != list(s.rss) for s in run.series),
            },
        )


def run_trends(run: TargetRun) -> tuple[dict[int, Trend], dict[int, list[int]], dict[int, float | None]]:
    """Each process's RSS trend over one run, with a profiler's own memory taken out and the warm-up and
    teardown left out; also the adjusted series and where each warm-up ended."""
    trends: dict[int, Trend] = {}
    adjusted: dict[int, list[int]] = {}
    warmups: dict[int, float | None] = {}
    for s in run.series:
        adjusted[s.pid] = without_overhead(s.times, s.rss, _overhead(run, s.pid))
        warmups[s.pid] = _warmup_end(run, s.pid)
        times, values = _until_teardown(run, s.pid, s.times, adjusted[s.pid])
        trends[s.pid] = analyse_series(times, values, warmups[s.pid])
    return trends, adjusted, warmups


def _overhead(run: TargetRun, pid: int) -> list[tuple[float, int]]:
    return [
        (e["t"] - run.started_at, int(e["overhead_bytes"])) for e in run.events_of("heap", pid) if "overhead_bytes" in e
    ]


def _until_teardown(
    run: TargetRun, pid: int, times: Sequence[float], values: Sequence[int]
) -> tuple[Sequence[float], Sequence[int]]:
    """The samples taken while the target's code ran: returning from main() frees what it held."""
    ended = run.events_of("target-end", pid)
    if ended:
        cut = ended[0]["t"] - run.started_at
        keep = sum(1 for t in times if t <= cut)
        times, values = (times[:keep], values[:keep]) if keep >= 5 else (times, values)
    kept_times, kept = without_final_drop(times, values)
    return (kept_times, kept) if len(kept) >= 5 else (times, values)


def _warmup_end(run: TargetRun, pid: int) -> float | None:
    """When the process last imported a module, within the first part of the run."""
    limit = WARMUP_IMPORTS_MAX * run.duration_s
    times = [e["t"] - run.started_at for e in run.events_of("modules", pid)]
    early = [t for t in times if t <= limit]
    return max(early) if early else None


def trend_from_json(data: dict[str, object]) -> Trend:
    return Trend(**data)  # type: ignore[arg-type]
