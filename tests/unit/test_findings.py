"""The join of the stages' findings and the verdict: pure functions on recorded shapes of runs."""

from __future__ import annotations

from dataclasses import replace

from leakbench.analysis.findings import RunView, join, least_disturbed, merge_suspects, rank
from leakbench.analysis.model import Retention, StageReport, Suspect, TargetExit, Trend
from leakbench.analysis.native import site_shape
from leakbench.analysis.retention import ChainFacts, bound_of, recognise
from leakbench.analysis.trend import MIB, analyse_series
from leakbench.analysis.verdict import ProcessTrend, decide, order_by_stops, stopped_sites
from leakbench.stages.tracemalloc import _conclusive

OK = TargetExit(0, None, "ok")


def _process(values: list[int], pid: int = 100, role: str = "main", step: float = 0.1) -> ProcessTrend:
    times = [i * step for i in range(len(values))]
    return ProcessTrend(pid, role, analyse_series(times, values), len(values), tuple(values))  # type: ignore[arg-type]


def _linear(start: int = 50 * MIB, per_sample: int = MIB // 4, n: int = 100) -> list[int]:
    return [start + i * per_sample for i in range(n)]


def _plateau(start: int = 50 * MIB, rise: int = 40 * MIB, n: int = 100) -> list[int]:
    return [start + min(i, 30) * rise // 30 for i in range(n)]


def _suspect(
    line: int = 10,
    trend: str = "steady",
    size: int = 20 * MIB,
    stages: tuple[str, ...] = ("tracemalloc",),
    **kw: object,
) -> Suspect:
    fields: dict[str, object] = {
        "file": "/app/app.py",
        "line": line,
        "function": "handle",
        "bytes": size,
        "count": 1000,
        "pid": 100,
        "stages": stages,
        "visible_to_tracemalloc": True,
        "grew_in": 0.9,
        "trend": trend,
        "rate_bytes_per_s": 2 * MIB,
    }
    fields.update(kw)
    return Suspect(**fields)  # type: ignore[arg-type]


def test_a_steady_site_with_rss_growing_is_a_leak() -> None:
    v = decide([_process(_linear())], OK, [_suspect()])
    assert v.kind == "leak"
    assert v.growth_bytes_per_s > 0
    assert "app.py:10" in v.summary


def test_rss_growth_without_a_growing_site_is_never_a_leak() -> None:
    # without the native tracker a straight line of RSS is a question for it, not a leak
    v = decide([_process(_linear())], OK, [], ran_native=False)
    assert v.kind == "inconclusive"
    assert "--playbook native" in v.summary
    # with it, and nothing growing steadily: one-time allocations or the allocator
    v = decide([_process(_linear())], OK, [_suspect(trend="one-off")], ran_native=True, native_live_bytes=30 * MIB)
    assert v.kind == "no-leak"


def test_growth_toward_a_bounded_root_is_no_leak_with_its_bound() -> None:
    root = Retention(
        "list", 2048, 2048 * 20 * 1024, 100, "cache of functools.lru_cache on app.render", ("lru_cache app.render",)
    )
    bounded = Retention(**{**_fields(root), "bound": 2048})
    assert decide([_process(_linear())], OK, [_suspect()], retention=[root]).kind == "leak"
    v = decide([_process(_linear())], OK, [_suspect()], retention=[bounded])
    assert v.kind == "no-leak" and v.pattern == "plateau"
    assert "fills toward 2,048 entries × ~20.0 KiB ≈ 40.0 MiB; plateau expected" in v.summary


def test_a_window_grown_in_size_toward_its_maxlen_is_no_leak_without_a_size_per_entry() -> None:
    # a deque(maxlen=20000) followed as one object that grew in size: no entry count to divide by
    window = Retention("collections.deque", 0, 90_000, 100, "module global app.WINDOW", ("module app",), bound=20_000)
    v = decide([_process(_plateau())], OK, [_suspect()], retention=[window])
    assert v.kind == "no-leak"
    assert "module global app.WINDOW fills toward 20,000 entries; plateau expected" in v.summary


def _fields(r: Retention) -> dict[str, object]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}


def test_a_site_still_filling_under_tracemalloc_is_judged_on_the_least_disturbed_run() -> None:
    slow = ("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])
    v = decide(
        [_process(_plateau(), pid=200)],
        OK,
        [_suspect(rate_bytes_per_s=MIB)],
        judged_on="run-2 (under the native tracker)",
        disturbed=[slow],
    )
    assert v.kind == "no-leak" and v.pattern == "plateau"
    assert "run-2 (under the native tracker)" in v.summary
    # the same site in a run whose RSS keeps rising is a leak
    v = decide(
        [_process(_linear(), pid=200)],
        OK,
        [_suspect(rate_bytes_per_s=MIB)],
        judged_on="run-2 (under the native tracker)",
        disturbed=[slow],
    )
    assert v.kind == "leak"


def test_a_target_that_fails_at_once_is_the_headline() -> None:
    failed = TargetExit(1, None, "exception", "ValueError", "bad config")
    v = decide([_process([50 * MIB] * 4)], failed, [])
    assert v.kind == "inconclusive"
    assert v.summary.startswith("The target raised ValueError: bad config")
    assert "too short" not in v.summary
    crashed = TargetExit(None, 11, "killed")
    assert decide([_process(_linear())], crashed, [_suspect()]).summary.startswith(
        "The target crashed (killed by SIGSEGV)"
    )


def test_thin_evidence_is_inconclusive() -> None:
    v = decide([_process([50 * MIB, 51 * MIB, 53 * MIB], step=0.3)], OK, [])
    assert v.kind == "inconclusive"
    assert "more work" in v.summary


def test_a_mixed_line_carries_both_measures_and_the_c_level_share() -> None:
    tm = StageReport("tracemalloc", "ok", "", suspects=(_suspect(size=300 * 1024),))
    native = _suspect(
        size=int(94.8 * MIB),
        stages=("native",),
        visible_to_tracemalloc=False,
        tracemalloc_bytes=300 * 1024,
        native_bytes=int(94.8 * MIB),
        native_frames=("scratch_alloc",),
    )
    merged = merge_suspects({"tracemalloc": tm, "native": StageReport("native", "ok", "", suspects=(native,))})
    assert len(merged) == 1
    top = merged[0]
    assert top.stages == ("tracemalloc", "native")
    assert top.visible_to_tracemalloc is False
    assert (top.tracemalloc_bytes, top.native_bytes) == (300 * 1024, int(94.8 * MIB))
    v = decide([_process(_linear())], OK, merged)
    assert any("94.5 MiB of 94.8 MiB is C-level (not seen by tracemalloc)" in r for r in v.reasons), v.reasons


def test_the_least_disturbed_run_judges_and_the_report_says_which() -> None:
    traced = RunView("run-1", ("rss", "tracemalloc", "backrefs"), OK, 10.0, (_process(_linear(), pid=100),))
    native = RunView("run-2", ("native",), OK, 10.0, (_process(_plateau(), pid=200),))
    assert least_disturbed([traced, native]) is native
    reports = {"tracemalloc": StageReport("tracemalloc", "ok", "", suspects=(_suspect(),))}
    findings = join([traced, native], reports)
    assert findings.judged_on == "run-2 (under the native tracker)"
    assert dict(findings.sources)["trend, plateau and rate"] == "run-2 (under the native tracker)"
    assert findings.verdict.kind == "no-leak"


def test_growth_in_a_worker_is_named_as_the_workers() -> None:
    main = _process([40 * MIB] * 100, pid=100)
    worker = _process(_linear(), pid=101, role="child")
    run = RunView("run-1", ("rss", "tracemalloc"), OK, 10.0, (main, worker))
    reports = {"tracemalloc": StageReport("tracemalloc", "ok", "", suspects=(_suspect(pid=101),))}
    findings = join([run], reports)
    assert findings.verdict.kind == "leak"
    assert "worker process (pid 101, child)" in findings.verdict.summary
    assert findings.role_of(101) == "child"


def test_a_stage_that_measured_nothing_of_a_failed_target_is_not_ok() -> None:
    failed = TargetExit(1, None, "exception", "KeyError", "'x'")
    run = RunView("run-1", ("rss", "tracemalloc"), failed, 0.3, (_process([30 * MIB] * 3),))
    reports = {
        "rss": StageReport("rss", "ok", "main process: flat"),
        "tracemalloc": StageReport("tracemalloc", "ok", ""),
    }
    findings = join([run], reports)
    assert {s.status for s in findings.stages} == {"failed"}
    assert all("KeyError" in s.message for s in findings.stages)


def test_a_native_site_is_steady_only_while_it_keeps_rising() -> None:
    times = list(range(0, 5000, 100))
    rising = [i * 1000 for i in range(50)]
    churn = [min(i, 15) * 1000 + (500 if i % 2 else 0) for i in range(50)]  # filled, then up and down
    assert site_shape(times, rising) is not None and site_shape(times, rising)[1] == "steady"  # type: ignore[index]
    shape = site_shape(times, churn)
    assert shape is not None and shape[1] == "one-off"
    # an array replaced by a bigger one: both copies are live for a moment now and then
    replaced = [i * 1000 * (2 if i % 7 == 3 else 1) for i in range(50)]
    assert site_shape(times, replaced)[1] == "steady"  # type: ignore[index]
    freed = [*rising[:-3], 0, 0, 0]
    assert site_shape(times, freed)[1] == "one-off"  # type: ignore[index]


def test_an_lru_cache_with_a_maxsize_is_bounded_and_without_one_is_not() -> None:
    bounded = ChainFacts("list", "lru-cache", root_info={"maxsize": 4096, "first_argument": "key"})
    unbounded = ChainFacts("list", "lru-cache", root_info={"maxsize": None, "first_argument": "key"})
    assert bound_of(bounded) == 4096 and recognise(bounded).bound == 4096
    assert bound_of(unbounded) is None and recognise(unbounded).pattern == "cache without eviction"


def test_a_conclusive_stop_waits_for_every_process() -> None:
    growing = [{"t": float(i), "traced_bytes": i * MIB} for i in range(25)]
    young = [{"t": 20.0 + i, "traced_bytes": MIB} for i in range(3)]
    assert _conclusive(growing, 20.0) is True
    assert _conclusive(young, 20.0) is None  # a worker that has not shown its trend yet keeps the run going


def test_trend_helpers_are_consistent() -> None:
    assert isinstance(_process(_linear()).trend, Trend)


def test_the_line_profile_agrees_on_a_line_but_does_not_size_it() -> None:
    tm = StageReport("tracemalloc", "ok", "", suspects=(_suspect(size=300 * 1024),))
    lp = StageReport("line_profile", "ok", "", suspects=(_suspect(size=53 * MIB, trend="", stages=("line_profile",)),))
    for reports in ({"tracemalloc": tm, "line_profile": lp}, {"line_profile": lp, "tracemalloc": tm}):
        merged = merge_suspects(reports)
        assert len(merged) == 1
        assert merged[0].bytes == 300 * 1024 and set(merged[0].stages) == {"tracemalloc", "line_profile"}


def test_a_site_whose_fitted_rate_falls_is_not_steady_growth() -> None:
    v = decide([_process(_plateau())], OK, [_suspect(size=300 * 1024, rate_bytes_per_s=-2000.0)])
    assert v.kind == "no-leak"


def test_a_slow_leak_behind_a_big_load_is_not_taken_for_a_filled_cache() -> None:
    # RSS: a big one-time load, then a slow rise that hardly shows against it (a plateau in shape)
    rss = [20 * MIB + min(i, 30) * 7 * MIB + i * 8 * 1024 for i in range(100)]
    slow = ("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])
    site = _suspect(rate_bytes_per_s=4 * MIB)
    judged = [_process(rss, pid=200)]
    assert judged[0].trend.pattern == "plateau"
    assert decide(judged, OK, [site], disturbed=[slow]).kind == "no-leak"
    # the native tracker's live heap of that run keeps rising: the load stopped, the leak did not
    heap = [_process([220 * MIB + i * 64 * 1024 for i in range(50)], pid=200)]
    assert decide(judged, OK, [site], disturbed=[slow], judged_heap=heap).kind == "leak"


def test_a_one_time_load_that_tracemalloc_saw_grow_is_not_the_leak_behind_it() -> None:
    # Under tracemalloc, snapshots slowed by a big heap caught only the index being built (its line steady)
    # and the slow leak once, at the end (one-off). Run plainly, RSS jumps and then rises by 2%; what the
    # native tracker's run held rises in every reading but the last two (main() starting to free the index).
    rss = [20 * MIB + min(max(i - 10, 0), 5) * 44 * MIB + i * 100 * 1024 for i in range(50)]
    heap_values = [226 * MIB + i * 100 * 1024 for i in range(33)] + [224 * MIB, 223 * MIB]
    judged = [_process(rss, pid=200)]
    heap = [_process(heap_values, pid=300)]
    slow = ("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])
    index = _suspect(line=12, size=147 * MIB, rate_bytes_per_s=5 * MIB)
    history = _suspect(
        line=16, trend="one-off", size=int(4.6 * MIB), grew_in=0.0, rate_bytes_per_s=300_000.0, last_growth=4 * MIB
    )
    assert judged[0].trend.pattern == "plateau"
    fitted = heap[0].trend  # bent by the last two readings
    assert fitted.slope_bytes_per_s < 0 or fitted.r_squared < 0.6
    stops = stopped_sites([index], judged, [slow], "run-3", None, heap)
    assert list(stops) == [("/app/app.py", 12, 100)]
    v = decide(judged, OK, [index, history], disturbed=[slow], judged_heap=heap, stops=stops)
    assert v.kind == "leak", v
    assert "app.py:16 (handle)" in v.summary and "app.py:12 " not in v.summary
    assert any("app.py:12 grew only while the program started" in r for r in v.reasons)
    ordered = order_by_stops([index, history], stops)
    assert [(s.line, s.trend) for s in ordered] == [(16, "one-off"), (12, "plateau")]
    # without the live heap rising, the line that stopped is growth toward a steady state
    flat = [_process([226 * MIB + (i % 3) * 50 * 1024 for i in range(35)], pid=300)]
    assert decide(judged, OK, [index, history], disturbed=[slow], judged_heap=flat).kind == "no-leak"
    # snapshots spaced well enough for tracemalloc to see the index level off: no steady line at all, and
    # the live heap still says what grows
    levelled = replace(index, trend="plateau")
    v = decide(judged, OK, [levelled, history], disturbed=[slow], judged_heap=heap)
    assert v.kind == "leak" and "app.py:16 (handle)" in v.summary, v
    assert decide(judged, OK, [levelled, history], disturbed=[slow], judged_heap=flat).kind == "no-leak"
    assert [s.line for s in rank([levelled, history])] == [16, 12]


def test_the_native_live_heap_is_read_up_to_the_end_of_the_targets_code() -> None:
    live = [[i * 0.1, 100 * MIB + i * MIB] for i in range(40)] + [[4.0, 5 * MIB]]
    native = StageReport(
        "native", "ok", "", data={"processes": [{"pid": 7, "role": "main", "live": live, "target_end_s": 3.95}]}
    )
    from leakbench.analysis.findings import native_heap

    (heap,) = native_heap({"native": native})
    assert heap.trend.pattern == "linear" and heap.trend.slope_bytes_per_s > 0


def test_a_live_heap_that_filled_and_levelled_off_does_not_count_as_growing() -> None:
    rss = [20 * MIB + min(i, 30) * 2 * MIB for i in range(100)]
    slow = ("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])
    heap = [_process([10 * MIB + min(i, 15) * 4 * MIB for i in range(50)], pid=200)]
    v = decide([_process(rss, pid=200)], OK, [_suspect()], disturbed=[slow], judged_heap=heap)
    assert v.kind == "no-leak"


def test_a_bounded_cache_of_the_standard_library_is_not_the_programs_bound() -> None:
    typing_cache = Retention(
        "tuple", 120, 22000, 100, "cache of functools.lru_cache on typing._SpecialForm.__getitem__", (), bound=128
    )
    assert decide([_process(_linear())], OK, [_suspect()], retention=[typing_cache]).kind == "leak"


def test_allocator_retention_is_read_across_runs_by_role() -> None:
    # RSS grows in the native tracker's run (pid 200) while tracemalloc's heap (its own run, pid 100) is flat
    # and the native tracker saw little still live: the allocator keeping freed memory
    flat_heap = analyse_series([i * 0.5 for i in range(20)], [30 * MIB] * 20)
    v = decide(
        [_process(_linear(), pid=200)],
        OK,
        [],
        traced_growth={100: flat_heap},
        native_live_bytes=MIB,
        roles={100: "main", 200: "main"},
        judged_on="run-2 (under the native tracker)",
        disturbed=[("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])],
    )
    assert v.kind == "no-leak"
    assert "allocator" in v.reasons[0]


def test_the_full_playbook_ends_with_a_run_of_rss_sampling_alone() -> None:
    from leakbench.investigation import plan
    from leakbench.playbook import load
    from leakbench.stages.base import registry

    book = load("full")
    stages = [registry()[spec.kind].factory(spec.params) for spec in book.stages]
    groups = plan(stages)
    last = groups[-1]
    assert len(last) == 1 and stages[last[0]].kind == "rss"
    assert RunView("run-4", ("rss-2",), OK, 1.0, ()).disturbance == 0
    assert RunView("run-4", ("rss-2",), OK, 1.0, ()).label() == "run-4 (RSS sampling alone)"


def test_a_judged_run_without_the_workers_cannot_overrule_their_growth() -> None:
    # the workers' line grew steadily under tracemalloc; the native tracker's run sampled no worker and
    # judged the line made once: that run cannot speak for the workers
    traced = RunView(
        "run-1", ("rss", "tracemalloc"), OK, 10.0, (_process([40 * MIB] * 100), _process(_linear(), 101, "child"))
    )
    native = RunView("run-2", ("native",), OK, 10.0, (_process([40 * MIB] * 100, pid=200),))
    reports = {
        "tracemalloc": StageReport("tracemalloc", "ok", "", suspects=(_suspect(pid=101),)),
        "native": StageReport("native", "ok", "", suspects=(_suspect(pid=201, trend="one-off", stages=("native",)),)),
    }
    findings = join([traced, native], reports)
    assert findings.verdict.kind == "leak", findings.verdict


def test_a_one_time_load_read_as_a_step_has_levelled_off() -> None:
    # the least-disturbed run: two big jumps while an index is built, then flat; under tracemalloc the build
    # spanned the whole run and its line looked steady
    load = [20 * MIB if i < 15 else (120 * MIB if i < 22 else 230 * MIB) for i in range(100)]
    judged = [_process(load, pid=200)]
    slow = ("run-1 (under tracemalloc)", [_process(_linear(), pid=100)])
    assert judged[0].trend.pattern == "step"
    assert decide(judged, OK, [_suspect(size=200 * MIB)], disturbed=[slow]).kind == "no-leak"
    # steps that go on to the end are growth
    stairs = [20 * MIB + (i // 10) * 30 * MIB for i in range(100)]
    v = decide([_process(stairs, pid=200)], OK, [_suspect(size=200 * MIB)], disturbed=[slow])
    assert v.kind == "leak", v
