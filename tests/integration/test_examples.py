"""`leakbench investigate` on the bundled seed examples: the right verdict and the right line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench, marked_line

pytestmark = pytest.mark.integration

LEAKS = [
    ("buffer_leak/app.py", "buffer_leak/data_pipeline.py", "suspect"),
    ("word_frequency.py", "word_frequency.py", "suspect"),
    ("mem_leaker.py", "mem_leaker.py", "suspect"),
]


@pytest.mark.parametrize(("script", "suspect_file", "marker"), LEAKS)
def test_leaky_example_names_the_line(tmp_path: Path, script: str, suspect_file: str, marker: str) -> None:
    result = leakbench("investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(EXAMPLES / script))
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
    assert evidence["verdict"]["growth_bytes_per_s"] > 0
    top = evidence["suspects"][0]
    expected = EXAMPLES / suspect_file
    assert (top["file"], top["line"]) == (str(expected), marked_line(expected, marker))
    assert top["stages"] == ["tracemalloc"] and top["visible_to_tracemalloc"] is True
    report = (tmp_path / "run" / "report.md").read_text()
    first_paragraph = report.split("\n\n")[1]
    assert first_paragraph.startswith("**LEAK**")
    assert f"{expected.name}:{top['line']}" in first_paragraph


def test_bounded_cache_is_not_a_leak(tmp_path: Path) -> None:
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(EXAMPLES / "bounded_cache.py")
    )
    assert result.code == 0, result.stderr
    verdict = result.evidence()["verdict"]
    assert verdict["kind"] == "no-leak", verdict
    assert verdict["pattern"] == "plateau"


def test_report_command_renders_a_run_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = leakbench("investigate", "--playbook", "quick", "--out", str(run), str(EXAMPLES / "mem_leaker.py"), "40")
    assert first.code == 0, first.stderr
    (run / "report.md").unlink()
    (run / "report.html").unlink()
    again = leakbench("report", str(run))
    assert again.code == 0, again.stderr
    assert "mem_leaker.py" in (run / "report.md").read_text()
    assert "<html" in (run / "report.html").read_text()
