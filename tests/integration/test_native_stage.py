"""The native stage inside `leakbench investigate` when the target dies by SIGKILL (the examples test the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import leakbench, marked_line

pytestmark = [pytest.mark.integration, pytest.mark.native]
TARGETS = Path(__file__).parent / "targets"


def _top(tmp_path: Path, script: Path, *args: str) -> tuple[dict, dict]:
    result = leakbench("investigate", "--playbook", "native", "--out", str(tmp_path / "run"), str(script), *args)
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["stages"]["native"]["status"] == "ok", evidence["stages"]
    return evidence, evidence["suspects"][0]


def test_c_extension_leak_survives_sigkill(tmp_path: Path) -> None:
    script = TARGETS / "native_killed.py"
    evidence, top = _top(tmp_path, script)
    assert evidence["target"]["exit"]["signal"] == 9
    assert evidence["verdict"]["kind"] == "oom"
    assert (Path(top["file"]).name, top["line"]) == ("native_killed.py", marked_line(script, "suspect"))
    assert "leaky_process" in top["native_frames"]
    assert top["visible_to_tracemalloc"] is False


def test_a_target_that_never_ends_is_stopped_by_each_run_budget(tmp_path: Path) -> None:
    """Without --duration, every run of a service still ends: the native run has a budget of its own."""
    book = tmp_path / "short.toml"
    book.write_text(
        '[[stages]]\nkind = "rss"\n[[stages]]\nkind = "tracemalloc"\nbudget = 4\n'
        '[[stages]]\nkind = "native"\nbudget = 4\n'
    )
    script = TARGETS / "forever.py"
    result = leakbench("investigate", "--playbook", str(book), "--out", str(tmp_path / "run"), str(script), timeout=120)
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["target"]["exit"]["stopped_by"] == "budget"
    assert evidence["stages"]["native"]["status"] == "ok"
    top = evidence["suspects"][0]
    assert (Path(top["file"]).name, top["line"]) == ("forever.py", marked_line(script, "suspect"))
    assert top["stages"] == ["tracemalloc", "native"]
