"""`leakbench native run` and `leakbench native report`, the tracker used on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench, marked_line

pytestmark = pytest.mark.native


def test_run_then_report_names_the_leaking_call(tmp_path: Path) -> None:
    script = EXAMPLES / "native_leak" / "app.py"
    run = leakbench("native", "run", "-o", str(tmp_path / "cap.%p.lbt"), str(script), "60")
    assert run.code == 0, run.stderr
    (capture,) = tmp_path.glob("cap.*.lbt")
    assert str(capture) in run.stderr
    md = leakbench("native", "report", str(capture))
    assert md.code == 0, md.stderr
    assert f"app.py:{marked_line(script, 'suspect')}" in md.stdout and "leaky_process" in md.stdout
    data = json.loads(leakbench("native", "report", "--format", "json", str(capture)).stdout)
    top = data["suspects"][0]
    assert (top["file"], top["line"]) == (str(script), marked_line(script, "suspect"))
    assert top["bytes"] == 60 * 256 * 1024
    page = leakbench("native", "report", "--format", "html", str(capture))
    assert page.code == 0
    assert "<html" in Path(str(capture) + ".html").read_text()


def test_foreign_file_is_refused_with_file_and_offset(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.lbt"
    bogus.write_text("hello, this is not a capture\n")
    r = leakbench("native", "report", str(bogus))
    assert r.code == 2
    assert "notes.lbt" in r.stderr and "offset 0" in r.stderr
    assert "Traceback" not in r.stderr
