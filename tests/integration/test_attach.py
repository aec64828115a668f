"""`leakbench attach` refuses what it cannot attach to, in one line with exit code 2, leaving it unharmed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import leakbench


def test_a_pid_that_does_not_exist(tmp_path: Path) -> None:
    result = leakbench("attach", "4194302", "--duration", "3", "--out", str(tmp_path / "run"))
    assert result.code == 2
    assert "no process with PID 4194302" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_process_that_is_not_python(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        result = leakbench("attach", str(sleeper.pid), "--duration", "3", "--out", str(tmp_path / "run"))
        assert result.code == 2
        assert f"PID {sleeper.pid} (sleep) is not a Python process" in result.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_process_that_ends_while_leakbench_attaches(tmp_path: Path) -> None:
    # every thread blocked: leakbench waits for it to run Python code, and it is killed meanwhile
    blocked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.5)
    attach = subprocess.Popen(
        [sys.executable, "-m", "leakbench", "attach", str(blocked.pid), "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    blocked.kill()
    blocked.wait()
    _, stderr = attach.communicate(timeout=120)
    assert attach.returncode == 2, stderr
    assert f"PID {blocked.pid} ended" in stderr, stderr
    assert "Traceback" not in stderr


def test_a_process_that_ends_while_attached_still_gets_its_report(tmp_path: Path) -> None:
    short = subprocess.Popen([sys.executable, "-c", "import time\nfor _ in range(40): time.sleep(0.1)"])
    result = leakbench("attach", str(short.pid), "--duration", "30", "--out", str(tmp_path / "run"), timeout=120)
    assert short.wait(timeout=10) == 0
    assert result.code == 0, result.stderr
    assert f"PID {short.pid} ended while leakbench was attached" in result.stderr
    assert result.evidence()["target"]["exit"]["stopped_by"] is None


def test_a_process_with_remote_debugging_disabled(tmp_path: Path) -> None:
    env_proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={"PYTHON_DISABLE_REMOTE_DEBUG": "1"}
    )
    try:
        result = leakbench("attach", str(env_proc.pid), "--duration", "3", "--out", str(tmp_path / "run"))
        assert result.code == 2
        assert "remote debugging disabled" in result.stderr
        assert env_proc.poll() is None
    finally:
        env_proc.kill()
        env_proc.wait()
