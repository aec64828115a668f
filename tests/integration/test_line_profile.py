"""The line_profile stage on real runs: the seed examples, recursion, library code, stdin, and its limits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, leakbench, marked_line

pytestmark = pytest.mark.integration
TARGETS = Path(__file__).parent / "targets" / "lineprofile"

PROFILED_AFTER_TRACEMALLOC = """
name = "line-profile-test"
[[stages]]
kind = "rss"
[[stages]]
kind = "tracemalloc"
[[stages]]
kind = "line_profile"
"""

PROFILE_ONLY = """
name = "line-profile-only"
[[stages]]
kind = "line_profile"
budget = 20
"""


def investigate(tmp_path: Path, playbook: str, *args: str, stdin: str | None = None) -> tuple[dict[str, Any], dict]:
    book = tmp_path / "playbook.toml"
    book.write_text(playbook)
    result = leakbench("investigate", "--playbook", str(book), "--out", str(tmp_path / "run"), "-y", *args, stdin=stdin)
    assert result.code == 0, result.stderr
    stage = json.loads((tmp_path / "run" / "stages" / "line_profile.json").read_text())
    return result.evidence(), stage


def marked_row(output: str) -> str:
    return next(line for line in output.splitlines() if "◀" in line)


def test_word_frequency_marks_the_line_that_stores_the_article(tmp_path: Path) -> None:
    """Given the seed's word-frequency program, when tracemalloc has blamed it, the line profile of main()
    marks the line that stores the whole article, and that line's suspect carries both stages."""
    script = EXAMPLES / "word_frequency.py"
    line = marked_line(script, "suspect")
    evidence, stage = investigate(tmp_path, PROFILED_AFTER_TRACEMALLOC, str(script), "300")
    data = stage["data"]
    assert stage["status"] == "ok", stage["message"]
    assert data["profiled"]["qualname"] == "main"
    assert data["marked"]["line"] == line
    assert data["marked"]["is_top_suspect"] is True
    assert data["marked"]["share"] > 0.9  # the storing line is nearly all of what main() kept
    assert data["backend"] == "tracemalloc"
    assert data["repro"]["duration_s"] < 60
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(script), line)
    assert {"tracemalloc", "line_profile"} <= set(top["stages"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Line by line in the suspect function (memory_profiler)" in report
    assert f"| **{line}** |" in report
    assert (tmp_path / "run" / data["text"]).read_text().count("Line Contents") == 1  # memory_profiler's own


def test_buffer_example_marks_the_line_that_allocates_the_buffered_arrays(tmp_path: Path) -> None:
    script = EXAMPLES / "buffer_leak" / "app.py"
    pipeline = EXAMPLES / "buffer_leak" / "data_pipeline.py"
    started = time.monotonic()
    evidence, stage = investigate(tmp_path, PROFILED_AFTER_TRACEMALLOC, str(script))
    data = stage["data"]
    assert data["profiled"] == {"qualname": "normalize_vectors", "file": str(pipeline), "line": 20}
    assert data["marked"]["line"] == marked_line(pipeline, "suspect")
    assert data["calls_completed"] == 50 and data["stopped"] == "calls"
    assert data["repro"]["exit"] == "exited with code 0"  # the probe ended it cleanly after its 50 calls
    assert data["repro"]["duration_s"] < 30
    top = evidence["suspects"][0]
    assert top["line"] == marked_line(pipeline, "suspect") and "line_profile" in top["stages"]
    assert time.monotonic() - started < 90


def test_recursive_function_counts_outermost_calls_and_marks_the_allocation() -> None:
    script = TARGETS / "recursive_tree.py"
    result = leakbench("lineprofile", str(script), "--function", "build", "--repro-calls", "20")
    assert result.code == 0, result.stderr
    assert "20 completed call(s)" in result.stdout  # 20 trees of 6 levels each, not 20 nodes
    row = marked_row(result.stdout)
    assert row.split()[0] == str(marked_line(script, "suspect"))
    assert " 120 " in row  # the node line ran once per level of each tree


def test_library_function_profiles_the_users_caller_instead() -> None:
    script = TARGETS / "library_copy.py"
    result = leakbench("lineprofile", str(script), "--function", "copy:deepcopy", "--repro-calls", "30")
    assert result.code == 0, result.stderr
    assert "deepcopy is library code: its caller in your code was profiled instead" in result.stdout
    assert result.stdout.startswith("Archive.keep (library_copy.py:15)")
    assert marked_row(result.stdout).split()[0] == str(marked_line(script, "suspect"))


def test_target_arguments_and_stdin_are_passed_through() -> None:
    script = TARGETS / "stdin_lines.py"
    records = "".join(f"key{i}=value{i}\n" for i in range(200))
    result = leakbench("lineprofile", str(script), "--function", "parse", "--repro-calls", "500", "pre-", stdin=records)
    assert result.code == 0, result.stderr
    assert "parsed 200 records with prefix pre-" in result.stdout  # the target finished: 200 < 500 calls
    assert "200 completed call(s), stopped when the target's code returned" in result.stdout
    assert marked_row(result.stdout).split()[0] == str(marked_line(script, "suspect"))


def test_function_that_never_runs_in_the_repro_is_reported(tmp_path: Path) -> None:
    """Given a --repro command that does not reach the function, the stage says so instead of a table."""
    script = TARGETS / "stdin_lines.py"
    args = ("--function", "export", "--repro", f"python {script} pre-", str(script), "pre-", "--export")
    evidence, stage = investigate(tmp_path, PROFILE_ONLY, *args, stdin="a=1\n")
    assert stage["status"] == "ok"
    assert stage["data"]["never_called"] is True
    assert "export never ran in the repro" in stage["message"]
    assert stage["data"]["repro"]["argv"] == ["python", str(script), "pre-"]
    assert evidence["stages"]["line_profile"]["status"] == "ok"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "The function never ran in the repro." in report
    alone = leakbench("lineprofile", str(script), "--function", "export", "pre-", stdin="a=1\n")
    assert alone.code == 2 and "export never ran in the repro" in alone.stderr


def test_budget_ends_a_function_that_never_returns() -> None:
    script = TARGETS / "never_returns.py"
    started = time.monotonic()
    result = leakbench("lineprofile", str(script), "--function", "serve", "--budget", "3")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 20
    assert "0 completed call(s), stopped when the 3 s budget ran out" in result.stdout
    assert marked_row(result.stdout).split()[0] == str(marked_line(script, "suspect"))


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        (("--function", "job", "--repro-calls", "20"), "stopped after 20 completed call(s), as asked"),
        (("--function", "main", "--budget", "2"), "stopped when the 2 s budget ran out"),
    ],
)
def test_a_stop_in_an_asyncio_program_prints_no_traceback(stop: tuple[str, ...], expected: str) -> None:
    # given an asyncio program whose tasks the profiled function runs in
    script = Path(__file__).parents[1] / "harmless" / "programs" / "asyncio_tasks.py"
    # when leakbench stops it once the function has its calls (in a task), or at the budget (SIGINT)
    result = leakbench("lineprofile", str(script), *stop)
    # then the table is there, and nothing on stderr looks like the program crashed
    assert result.code == 0, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr and "SystemExit" not in result.stderr, result.stderr
    assert "exception was never retrieved" not in result.stderr, result.stderr


def test_native_memory_is_measured_with_the_psutil_backend() -> None:
    """tracemalloc cannot see the extension's malloc; RSS can, and still names the calling line."""
    script = EXAMPLES / "native_leak" / "app.py"
    result = leakbench("lineprofile", str(script), "--function", "handle", "--backend", "psutil", "--repro-calls", "40")
    assert result.code == 0, result.stderr
    assert "psutil backend" in result.stdout and "noisy for small allocations" in result.stdout
    assert marked_row(result.stdout).split()[0] == str(marked_line(script, "suspect"))
