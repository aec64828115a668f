"""The native stage inside `leakbench investigate`: C-level leaks, SIGKILL, and caught MemoryErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench, marked_line

pytestmark = [pytest.mark.integration, pytest.mark.native]
TARGETS = Path(__file__).parent / "targets"


def _top(tmp_path: Path, script: Path, *args: str) -> tuple[dict, dict]:
    result = leakbench("investigate", "--playbook", "native", "--out", str(tmp_path / "run"), str(script), *args)
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["stages"]["native"]["status"] == "ok", evidence["stages"]
    return evidence, evidence["suspects"][0]


def test_c_extension_leak_is_named_at_the_calling_line(tmp_path: Path) -> None:
    """Given an extension that mallocs a buffer per call and never frees it, the top suspect is the Python
    line that calls it, with the extension's function among the native frames, invisible to tracemalloc."""
    script = EXAMPLES / "native_leak" / "app.py"
    evidence, top = _top(tmp_path, script)
    assert evidence["verdict"]["kind"] == "leak"
    assert (top["file"], top["line"]) == (str(script), marked_line(script, "suspect"))
    assert "leaky_process" in top["native_frames"]
    assert top["visible_to_tracemalloc"] is False
    assert "native" in top["stages"]
    assert top["bytes"] >= 250 * 256 * 1024  # most of the 300 buffers of 256 KiB
    assert any("the growth is native" in reason for reason in evidence["verdict"]["reasons"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert "leaky_process" in report


def test_c_extension_leak_survives_sigkill(tmp_path: Path) -> None:
    script = TARGETS / "native_killed.py"
    evidence, top = _top(tmp_path, script)
    assert evidence["target"]["exit"]["signal"] == 9
    assert evidence["verdict"]["kind"] == "oom"
    assert (Path(top["file"]).name, top["line"]) == ("native_killed.py", marked_line(script, "suspect"))
    assert "leaky_process" in top["native_frames"]
    assert top["visible_to_tracemalloc"] is False


@pytest.mark.parametrize("mode", ["python", "numpy"])
def test_caught_memory_error_is_still_out_of_memory(tmp_path: Path, mode: str) -> None:
    """The OOM simulator catches its MemoryError and exits 0: the failed allocation still tells."""
    script = EXAMPLES / "oom_simulator.py"
    evidence, top = _top(tmp_path, script, mode)
    assert evidence["target"]["exit"]["code"] == 0
    assert evidence["verdict"]["kind"] == "oom"
    assert (top["file"], top["line"]) == (str(script), marked_line(script, f"suspect-{mode}"))
    assert top["trend"] == "failed"
