"""A python the target runs (subprocess.run([sys.executable, ...])) carries the agent: its leak is its own, a
child's; the environment's own sitecustomize still runs in every process, and a shell command runs as usual."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import leakbench, marked_line

pytestmark = pytest.mark.integration
TARGETS = Path(__file__).parent / "targets"


def test_an_execd_python_carries_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['SITE_MARK_SEEN'] = 'yes'\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    script = TARGETS / "exec_child.py"
    out = tmp_path / "run"
    result = leakbench("investigate", "-y", "--playbook", "quick", "--out", str(out), str(script))
    assert result.code == 0, result.stderr
    assert "main sitecustomize yes" in result.stdout and "child sitecustomize yes" in result.stdout
    assert "shell ran" in result.stdout
    evidence = result.evidence()
    roles = {p["pid"]: p["role"] for p in evidence["processes"]}
    line = marked_line(script, "child")
    blamed = [s for s in evidence["suspects"] if (s["file"], s["line"]) == (str(script), line)]
    assert blamed, evidence["suspects"]
    assert roles.get(blamed[0]["pid"]) == "child"
    hellos = [
        json.loads(text)
        for path in (out / "runs").rglob("channel/*.jsonl")
        for text in path.read_text().splitlines()
        if '"hello"' in text
    ]
    assert {h["role"] for h in hellos} == {"main", "child"}
    assert os.environ.get("SITE_MARK_SEEN") is None  # nothing leaked into this process
