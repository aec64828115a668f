"""Growing-site analysis over synthetic tracemalloc traces."""

from __future__ import annotations

from leakbench.analysis.sites import FrameRules, aggregate, attribute, growing_sites

RULES = FrameRules(
    library_paths=("/usr/lib/python3.11/",),
    agent_dir="/opt/leakbench/agent/",
    launch_file="/opt/leakbench/agent/bootstrap.py",
)
LAUNCH = (("<frozen runpy>", 88), ("/opt/leakbench/agent/bootstrap.py", 90))


def trace(size: int, *frames: tuple[str, int]) -> tuple[int, int, tuple[tuple[str, int], ...], int]:
    stack = tuple(frames) + LAUNCH
    return (0, size, stack, len(stack))


def test_site_is_the_deepest_frame_in_user_code() -> None:
    frames = (("/usr/lib/python3.11/json/encoder.py", 10), ("/app/service.py", 42), ("/app/main.py", 7))
    assert attribute(frames + LAUNCH, RULES) == ("/app/service.py", 42)


def test_allocations_of_the_agent_itself_are_dropped() -> None:
    frames = (("/usr/lib/python3.11/json/encoder.py", 10), ("/opt/leakbench/agent/core.py", 60))
    assert attribute(frames, RULES) is None


def test_launch_frames_under_the_target_are_neutral() -> None:
    assert attribute((("/app/main.py", 3), *LAUNCH), RULES) == ("/app/main.py", 3)


def test_a_line_that_grows_every_interval_ranks_above_a_one_off() -> None:
    series = []
    for i in range(10):
        traces = [trace(80_000, ("/app/leak.py", 5)) for _ in range(i)]  # +78 KiB per interval
        traces.append(trace(500_000 if i >= 1 else 0, ("/app/setup.py", 9)))  # one jump at the start
        series.append(aggregate(float(i), traces, RULES))
    rows = growing_sites(series)
    assert (rows[0].file, rows[0].line) == ("/app/leak.py", 5)
    assert rows[0].grew_in == 1.0
    assert rows[0].bytes_per_interval == 80_000
    assert rows[0].count_per_interval == 1
    one_off = next(r for r in rows if r.file == "/app/setup.py")
    assert not one_off.steady


def test_a_site_that_fills_and_stops_is_marked_plateaued() -> None:
    series = [aggregate(float(i), [trace(60_000, ("/app/cache.py", 3))] * min(i, 4), RULES) for i in range(12)]
    (row,) = growing_sites(series)
    assert row.plateaued and not row.steady


def test_allocations_made_while_importing_are_not_growth() -> None:
    frames = (
        ("<frozen importlib._bootstrap_external>", 729),
        ("<frozen importlib._bootstrap>", 241),
        ("/app/main.py", 1),
    )
    assert attribute(frames + LAUNCH, RULES) is None


def test_temporaries_caught_at_the_snapshots_are_not_steady_growth() -> None:
    # a report builder: a big temporary list, sometimes live at a snapshot and sometimes not, and live at the
    # last one; it rises in half of the intervals, but its trend line does not rise
    series = []
    for i in range(21):
        size = 1_200_000 if i % 2 else 0
        series.append(aggregate(float(i), [trace(size, ("/app/report.py", 13))] if size else [], RULES))
    series.append(aggregate(21.0, [trace(1_300_000, ("/app/report.py", 13))], RULES))
    rows = growing_sites(series)
    row = next(r for r in rows if r.line == 13)
    assert row.grew_in >= 0.5
    assert not row.steady


def test_a_level_that_churns_is_not_steady_however_its_ends_fall() -> None:
    # an asyncio loop's pending tasks, caught at 20 snapshots: between 200 and 600 KiB, in no order; it
    # rose in half of its intervals, ends 300 KiB above its start and its fitted line rises by more than
    # half of that, but later sizes are not surely larger than earlier ones
    levels = [2, 3, 2, 2, 5, 2, 6, 3, 4, 2, 5, 3, 6, 2, 3, 6, 3, 6, 2, 5]
    series = [aggregate(float(i), [trace(n * 100_000, ("/app/loop.py", 11))], RULES) for i, n in enumerate(levels)]
    row = next(r for r in growing_sites(series) if r.line == 11)
    assert row.grew_in >= 0.5 and row.fitted_growth >= 0.5 * row.growth_bytes and not row.plateaued
    assert not row.steady
    # a leak between the same ends, a little every interval, is steady
    leak = [aggregate(float(i), [trace(200_000 + 15_000 * i, ("/app/loop.py", 11))], RULES) for i in range(21)]
    assert next(r for r in growing_sites(leak) if r.line == 11).steady


def test_memory_the_program_frees_in_its_last_moments_does_not_undo_the_growth() -> None:
    # per-thread memos grow for 12 snapshots; the pool is shut down (its threads and their memos gone) just
    # before main() returns, so the last interval snapshot, before the end is marked, holds nothing
    series = [aggregate(float(i), [trace(4_000_000 * i, ("/app/memo.py", 19))], RULES) for i in range(1, 13)]
    series.append(aggregate(12.5, [trace(1_000, ("/app/memo.py", 29))], RULES))
    teardown = aggregate(12.6, [trace(1_000, ("/app/memo.py", 29))], RULES)
    row = next(r for r in growing_sites(series, teardown=teardown) if r.line == 19)
    assert row.steady and row.growth_bytes >= 40_000_000


# A pool worker forked at `with Pool(2) as pool:` (main.py:20): the stack it inherited, newest first.
POOL = "/usr/lib/python3.11/multiprocessing/"
FORKED_ON = (
    (POOL + "popen_fork.py", 66),  # the line that called os.fork
    (POOL + "pool.py", 329),
    ("/app/main.py", 20),
    ("/app/main.py", 28),
    *LAUNCH,
)
WORKER = FrameRules(RULES.library_paths, RULES.agent_dir, RULES.launch_file, inherited=FORKED_ON)


def test_a_forked_workers_growth_is_not_put_on_the_line_that_started_it() -> None:
    # what the worker unpickles from its task queue: library frames of its own, then the inherited stack
    own = ((POOL + "queues.py", 367), (POOL + "pool.py", 114), (POOL + "popen_fork.py", 71))
    received = own + FORKED_ON[1:]
    assert attribute(received, RULES) == ("/app/main.py", 20)  # the parent's line, without the fork stack
    assert attribute(received, WORKER) == (POOL + "queues.py", 367)
    # the worker's own code, called from the pool's loop, is its site
    counted = (("/app/wordstats.py", 7), (POOL + "pool.py", 125), (POOL + "popen_fork.py", 71), *FORKED_ON[1:])
    assert attribute(counted, WORKER) == ("/app/wordstats.py", 7)
    # a traceback cut at tracemalloc's frame limit is aligned by the stack's whole depth
    assert attribute(received[:4], WORKER, depth=len(received)) == (POOL + "queues.py", 367)


def test_a_child_that_returned_from_the_frames_it_was_forked_on_keeps_its_whole_stack() -> None:
    # os.fork() in the user's own function: the child returns from it and works in main.py's loop
    rules = FrameRules(
        RULES.library_paths,
        RULES.agent_dir,
        RULES.launch_file,
        inherited=(("/app/main.py", 9), ("/app/main.py", 30), *LAUNCH),
    )
    # deeper than the fork, but the frames above are not the inherited ones any more
    assert attribute((("/app/work.py", 4), ("/app/main.py", 33), ("/app/main.py", 40), *LAUNCH), rules) == (
        "/app/work.py",
        4,
    )
    # the child runs on in the frame that called os.fork: its later lines there are its own
    assert attribute((("/app/main.py", 12), ("/app/main.py", 30), *LAUNCH), rules) == ("/app/main.py", 12)
