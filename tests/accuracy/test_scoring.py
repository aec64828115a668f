"""The runner's bar, on hand-made evidence: what counts as the right line, the right root and a pass."""

from __future__ import annotations

import json
from pathlib import Path

from accuracy.corpus import Program
from accuracy.runner import Outcome, Run, merge_records, merge_results, score, summary_lines

APP = Path("/srv/app.py")


def evidence(kind: str, suspects: list[tuple[str, int]], root: str = "") -> dict[str, object]:
    return {
        "verdict": {"kind": kind, "pattern": "linear", "confidence": 0.9, "summary": ""},
        "suspects": [{"file": f, "line": n, "function": "f"} for f, n in suspects],
        "retention": [{"root": root}] if root else [],
    }


def test_a_leak_passes_with_its_line_in_the_top_three_and_its_root_named() -> None:
    program = Program("leak/x", APP, "leak", lines=((APP, 12),), roots=("module global __main__.CACHE",))
    run = score(
        program, evidence("leak", [("/srv/a.py", 1), ("/srv/b.py", 2), (str(APP), 12)], "module global __main__.CACHE")
    )
    assert run.line_hit and run.root_hit
    assert Outcome(program, [run]).passed


def test_a_leak_fails_when_its_line_is_fourth_or_its_root_is_another() -> None:
    program = Program("leak/x", APP, "leak", lines=((APP, 12),), roots=("CACHE", "_memo"))
    fourth = score(program, evidence("leak", [("/a.py", 1), ("/b.py", 2), ("/c.py", 3), (str(APP), 12)], "_memo"))
    assert not fourth.line_hit and fourth.root_hit
    wrong_root = score(program, evidence("leak", [(str(APP), 12)], "class attribute typing._SpecialForm"))
    assert wrong_root.line_hit and not wrong_root.root_hit
    assert not Outcome(program, [fourth]).passed and not Outcome(program, [wrong_root]).passed


def test_a_native_leak_without_a_python_root_needs_only_its_line() -> None:
    program = Program("leak/ctypes", APP, "leak", lines=((APP, 5),))
    assert Outcome(program, [score(program, evidence("leak", [(str(APP), 5)]))]).passed


def test_a_package_line_matches_the_end_of_the_suspect_path() -> None:
    program = Program("pkg/p@1", APP, "leak", package_lines=("multidict/_multidict_py.py:40",), group="package")
    site = "/venv/lib/python3.11/site-packages/multidict/_multidict_py.py"
    assert score(program, evidence("leak", [(site, 40)])).line_hit
    assert not score(program, evidence("leak", [(site, 41)])).line_hit


def test_no_leak_must_be_no_leak_in_every_run_unless_inconclusive_is_allowed() -> None:
    strict = Program("no_leak/x", APP, "no-leak")
    short = Program("no_leak/short", APP, "no-leak", allow_inconclusive=True)
    ok, unsure, leak = Run("no-leak"), Run("inconclusive"), Run("leak")
    assert Outcome(strict, [ok, ok, ok]).passed
    assert not Outcome(strict, [ok, unsure, ok]).passed
    assert Outcome(short, [ok, unsure, ok]).passed
    assert not Outcome(short, [ok, ok, leak]).passed
    assert not Outcome(strict, []).passed


def test_the_summary_counts_the_matrix_and_the_stability() -> None:
    leak = Program("leak/x", APP, "leak", lines=((APP, 1),))
    clean = Program("no_leak/y", APP, "no-leak")
    hit = Run("leak", line_hit=True)
    lines = summary_lines([Outcome(leak, [hit, hit, Run("no-leak")]), Outcome(clean, [Run("no-leak")] * 3)])
    assert lines[1].split() == ["leak", "2", "1", "0", "0"]
    assert lines[2].split() == ["no-leak", "0", "3", "0", "0"]
    assert "2/3" in lines[3]  # top-3 line hits over the leak runs
    assert "same verdict in every run: 1/2" in lines[5]
    assert "programs meeting the bar: 1/2" in lines[6]


def test_a_pass_kept_in_another_results_file_is_merged_program_by_program(tmp_path: Path) -> None:
    program = Program("leak/dict_cache_unbounded", APP, "leak", lines=((APP, 1),))
    here, there = tmp_path / "RESULTS.md", tmp_path / "later" / "RESULTS.md"
    there.parent.mkdir()
    merge_results(here, [Outcome(program, [Run("no-leak")])], "before")
    merge_results(there, [Outcome(program, [Run("leak", line_hit=True)] * 3)], "after")
    merge_records(here, json.loads(there.with_suffix(".json").read_text()))
    record = json.loads(here.with_suffix(".json").read_text())["leak/dict_cache_unbounded"]
    assert record["when"] == "after" and [r["verdict"] for r in record["runs"]] == ["leak"] * 3
    # and the table is written again from the merged records
    row = next(line for line in here.read_text().splitlines() if line.startswith("| leak/dict_cache_unbounded"))
    assert row.endswith("| after |") and "| pass |" in row
