"""Bad input gets one clear line naming what and where, exit code 2, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench

SCRIPT = str(EXAMPLES / "mem_leaker.py")


def _refused(result_code: int, stderr: str, *needles: str) -> None:
    assert result_code == 2, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_missing_target(tmp_path: Path) -> None:
    r = leakbench("investigate", "--out", str(tmp_path / "o"), str(tmp_path / "nope.py"))
    _refused(r.code, r.stderr, "not found", "nope.py")


def test_not_python(tmp_path: Path) -> None:
    binary = tmp_path / "tool.py"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 8)
    r = leakbench("investigate", "--out", str(tmp_path / "o"), str(binary))
    _refused(r.code, r.stderr, "not a Python source file", "tool.py")


def test_unknown_playbook(tmp_path: Path) -> None:
    r = leakbench("investigate", "--playbook", "turbo", "--out", str(tmp_path / "o"), SCRIPT)
    _refused(r.code, r.stderr, "turbo", "unknown playbook", "quick")


def test_broken_playbook_names_file_and_key(tmp_path: Path) -> None:
    book = tmp_path / "mine.toml"
    book.write_text('[[stages]]\nkind = "rss"\n[[stages]]\nkind = "tracemalloc"\ninterval = "often"\n')
    r = leakbench("investigate", "--playbook", str(book), "--out", str(tmp_path / "o"), SCRIPT)
    _refused(r.code, r.stderr, "mine.toml", "stages[1].interval")


def test_malformed_memory_limit(tmp_path: Path) -> None:
    r = leakbench("investigate", "--memory-limit", "lots", "--out", str(tmp_path / "o"), SCRIPT)
    _refused(r.code, r.stderr, "--memory-limit", "lots")


def test_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = leakbench("investigate", "--out", str(blocker / "run"), SCRIPT)
    _refused(r.code, r.stderr, "--out", "cannot write")


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    r = leakbench("report", str(tmp_path))
    _refused(r.code, r.stderr, "not a leakbench run directory")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = leakbench("investigate", "--debug", "--out", str(tmp_path / "o"), str(tmp_path / "nope.py"))
    assert r.code == 2
    assert "Traceback" in r.stderr


@pytest.mark.parametrize("duration", ["0", "-3"])
def test_bad_duration(tmp_path: Path, duration: str) -> None:
    r = leakbench("investigate", "--duration", duration, "--out", str(tmp_path / "o"), SCRIPT)
    _refused(r.code, r.stderr, "--duration")
