"""`leakbench investigate` with the default playbook on every bundled example: the report's first paragraph
names the right verdict, line and root, and evidence.json says the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench, marked_line

pytestmark = [pytest.mark.integration, pytest.mark.native]


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    verdict: str
    suspect: tuple[str, str] | None = None  # (file under examples/, marker)
    root: str | None = None  # words the first paragraph and retention[0].root must contain


CASES = {
    "buffer": Case(
        ("buffer_leak/app.py",), "leak", ("buffer_leak/data_pipeline.py", "suspect"), "data_pipeline.buffer"
    ),
    "word-frequency": Case(("word_frequency.py",), "leak", ("word_frequency.py", "suspect"), "word_index"),
    "mem-leaker": Case(("mem_leaker.py",), "leak", ("mem_leaker.py", "suspect"), "module global __main__.data"),
    "bounded-cache": Case(("bounded_cache.py",), "no-leak"),
    "oom-python": Case(("oom_simulator.py", "python"), "oom", ("oom_simulator.py", "suspect-python")),
    "oom-numpy": Case(("oom_simulator.py", "numpy"), "oom", ("oom_simulator.py", "suspect-numpy")),
    "c-extension": Case(("native_leak/app.py",), "leak", ("native_leak/app.py", "suspect")),
}


def _investigate(tmp_path: Path, case: Case) -> tuple[dict, str]:
    script, *args = case.args
    result = leakbench("investigate", "--out", str(tmp_path / "run"), str(EXAMPLES / script), *args)
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    first_paragraph = (tmp_path / "run" / "report.md").read_text().split("\n\n")[1]
    return evidence, first_paragraph


# the bounded cache's plateau is also tests/integration/test_verdicts.py's (a bounded lru_cache still filling)
SLOW = {"bounded-cache"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_example_report_names_verdict_line_and_root(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    evidence, first = _investigate(tmp_path, case)
    assert evidence["verdict"]["kind"] == case.verdict, evidence["verdict"]
    assert first.startswith(f"**{case.verdict.upper()}**")
    failed = [n for n, s in evidence["stages"].items() if s["status"] == "failed"]
    assert not failed, evidence["stages"]
    if case.suspect:
        path = EXAMPLES / case.suspect[0]
        line = marked_line(path, case.suspect[1])
        top = evidence["suspects"][0]
        assert (top["file"], top["line"]) == (str(path), line)
        assert f"{path.name}:{line}" in first
    if case.root:
        assert case.root in evidence["retention"][0]["root"]
        assert case.root in first.replace("\\_", "_")
    if case.verdict == "leak":
        assert evidence["verdict"]["growth_bytes_per_s"] > 0
    if name == "bounded-cache":
        assert evidence["verdict"]["pattern"] == "plateau"
    if name.startswith("oom"):
        assert evidence["target"]["exit"]["code"] == 0  # it caught its MemoryError: the native tracker saw it
        assert evidence["suspects"][0]["trend"] == "failed"
    if name == "c-extension":
        top = evidence["suspects"][0]
        assert "leaky_process" in top["native_frames"]
        assert top["visible_to_tracemalloc"] is False
        assert any("the growth is native" in r for r in evidence["verdict"]["reasons"])
    if name in ("buffer", "word-frequency"):
        assert "line_profile" in evidence["suspects"][0]["stages"]


def test_report_command_renders_a_run_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    script = str(EXAMPLES / "mem_leaker.py")
    first = leakbench("investigate", "--playbook", "quick", "--out", str(run), script, "40")
    assert first.code == 0, first.stderr
    (run / "report.md").unlink()
    (run / "report.html").unlink()
    again = leakbench("report", str(run))
    assert again.code == 0, again.stderr
    assert "mem_leaker.py" in (run / "report.md").read_text()
    assert "<html" in (run / "report.html").read_text()
