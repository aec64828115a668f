"""The target runs as it would without leakbench, and every way it can end is recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import leakbench, marked_line

pytestmark = pytest.mark.integration
TARGETS = Path(__file__).parent / "targets"


def test_target_sees_what_plain_python_shows_it(tmp_path: Path) -> None:
    """Given a script that prints its argv, sys.path[0], __name__, cwd and stdin, and exits 3,
    when it runs under leakbench, then it prints the same as under plain python."""
    script = TARGETS / "echo_world.py"
    plain = subprocess.run(
        [sys.executable, str(script), "a", "--flag", "b"],
        capture_output=True,
        text=True,
        input="hello",
        cwd=tmp_path,
    )
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(script), "a", "--flag", "b",
        cwd=tmp_path, stdin="hello",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[0]) == json.loads(plain.stdout)
    exit_ = result.evidence()["target"]["exit"]
    assert exit_ == exit_ | {"code": 3, "signal": None, "status": "ok"}


def test_module_target_runs_like_python_dash_m(tmp_path: Path) -> None:
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), "-m", "pkgmod", "x", cwd=TARGETS
    )
    assert result.code == 0, result.stderr
    assert "module-run __main__ ['x']" in result.stdout
    assert result.evidence()["target"]["argv"] == ["python", "-m", "pkgmod", "x"]


def test_uncaught_exception_is_evidence_not_an_error(tmp_path: Path) -> None:
    result = leakbench("investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(TARGETS / "raises.py"))
    assert result.code == 0, result.stderr
    # the target's own traceback, as python prints it, without leakbench's launch frames
    assert "ValueError: bad record 42" in result.stderr
    assert "bootstrap.py" not in result.stderr and "runpy" not in result.stderr
    exit_ = result.evidence()["target"]["exit"]
    assert exit_["status"] == "exception" and exit_["code"] == 1
    assert exit_["exception"] == {"type": "ValueError", "message": "bad record 42"}
    assert (tmp_path / "run" / "report.md").read_text().count("bad record 42") >= 1


def test_sigkill_leaves_a_report_with_what_was_gathered(tmp_path: Path) -> None:
    script = TARGETS / "killed.py"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(script))
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["target"]["exit"] | {} == evidence["target"]["exit"]
    assert evidence["target"]["exit"]["status"] == "killed"
    assert evidence["target"]["exit"]["signal"] == 9
    assert evidence["verdict"]["kind"] == "oom"
    top = evidence["suspects"][0]
    assert (Path(top["file"]).name, top["line"]) == ("killed.py", marked_line(script, "suspect"))


def test_duration_stops_a_service_and_the_report_still_comes_out(tmp_path: Path) -> None:
    script = TARGETS / "forever.py"
    began = time.monotonic()
    result = leakbench(
        "investigate", "--playbook", "quick", "--duration", "4", "--out", str(tmp_path / "run"), str(script)
    )
    assert result.code == 0, result.stderr
    assert time.monotonic() - began < 40
    evidence = result.evidence()
    assert evidence["target"]["exit"]["status"] == "timeout"
    assert evidence["target"]["exit"]["stopped_by"] == "duration"
    assert evidence["verdict"]["kind"] == "leak"
    top = evidence["suspects"][0]
    assert (Path(top["file"]).name, top["line"]) == ("forever.py", marked_line(script, "suspect"))


def test_memory_limit_turns_growth_into_memory_error(tmp_path: Path) -> None:
    script = TARGETS / "memory_error.py"
    result = leakbench(
        "investigate",
        "--playbook",
        "quick",
        "--memory-limit",
        "600MB",
        "--out",
        str(tmp_path / "run"),
        str(script),
    )
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["target"]["exit"]["status"] == "memory-error"
    assert evidence["target"]["memory_limit_bytes"] == 600_000_000
    assert evidence["verdict"]["kind"] == "oom"
    top = evidence["suspects"][0]
    assert (Path(top["file"]).name, top["line"]) == ("memory_error.py", marked_line(script, "suspect"))


def test_forked_worker_is_reported_as_a_child(tmp_path: Path) -> None:
    script = TARGETS / "forking.py"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(script))
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    roles = {p["pid"]: p["role"] for p in evidence["processes"]}
    assert sorted(roles.values()) == ["child", "main"]
    child = next(pid for pid, role in roles.items() if role == "child")
    child_suspects = [s for s in evidence["suspects"] if s["pid"] == child]
    assert child_suspects, evidence["suspects"]
    assert (Path(child_suspects[0]["file"]).name, child_suspects[0]["line"]) == (
        "forking.py",
        marked_line(script, "suspect"),
    )
    assert evidence["verdict"]["kind"] == "leak"


def test_target_interpreter_without_leakbench(tmp_path: Path) -> None:
    """--python names an environment that has never heard of leakbench: the agent still runs there."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import leakbench"], capture_output=True, cwd=tmp_path).returncode != 0
    script = TARGETS / "forever.py"
    result = leakbench(
        "investigate", "--playbook", "quick", "--python", str(python), "--duration", "3",
        "--out", str(tmp_path / "run"), str(script),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["environment"]["interpreter"] == str(python)
    assert evidence["stages"]["tracemalloc"]["status"] == "ok"
    top = evidence["suspects"][0]
    assert (Path(top["file"]).name, top["line"]) == ("forever.py", marked_line(script, "suspect"))


def test_report_html_escapes_every_string_from_the_target(tmp_path: Path) -> None:
    script = TARGETS / "hostile_names.py"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(script))
    assert result.code == 0, result.stderr
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "default-src 'none'" in page  # nothing from outside the page loads or runs
    markdown = (tmp_path / "run" / "report.md").read_text()
    outside_code = markdown.split("```")[::2]  # fenced blocks are shown as written, never rendered
    assert not any("<script>" in part.replace("`<script>", "") for part in outside_code)
