"""`leakbench attach PID` on a service started plainly, on each interpreter: it names the leaking line and
its root, the service answers every request during and after, nothing of leakbench stays in it, and it can
be attached to again."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import leakbench, marked_line
from tests.versions.conftest import Interpreter

SERVICE = Path(__file__).parent / "targets" / "attach_service.py"


class Load(threading.Thread):
    """Requests to the service every few milliseconds, counting the ones that failed."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent = 0
        self.failed: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/item/{self.sent}", timeout=10) as reply:
                    assert reply.read() == b"ok"
            except Exception as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}")
            self.sent += 1
            time.sleep(0.004)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=15)


def _status(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as reply:
        data: dict[str, object] = json.loads(reply.read())
    return data


@pytest.fixture
def service(heavy_interpreter: Interpreter) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [heavy_interpreter.python, str(SERVICE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    try:
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def test_attach_names_the_line_and_root_and_leaves_the_service_as_it_was(
    service: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = service
    load = Load(port)
    load.start()
    try:
        first = leakbench("attach", str(proc.pid), "--duration", "12", "--out", str(tmp_path / "one"), timeout=180)
        assert first.code == 0, first.stderr + first.stdout
        evidence = first.evidence()
        assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
        line = marked_line(SERVICE, "suspect")
        top3 = [(Path(s["file"]).name, s["line"]) for s in evidence["suspects"][:3]]
        assert (SERVICE.name, line) in top3, top3
        assert any("request_log" in r["root"] for r in evidence["retention"]), evidence["retention"]
        assert evidence["target"]["exit"]["stopped_by"] == "detached"
        assert "detached from PID" in first.stderr + first.stdout
        status = _status(port)
        assert status["tracing"] is False and status["modules"] == [], status
        assert not any("leakbench" in str(t) for t in status["threads"]), status  # type: ignore[attr-defined]
        # ... and it can be attached to again
        second = leakbench("attach", str(proc.pid), "--duration", "4", "--out", str(tmp_path / "two"), timeout=120)
        assert second.code == 0, second.stderr + second.stdout
        assert second.evidence()["stages"]["tracemalloc"]["status"] == "ok"
        status = _status(port)
        assert status["tracing"] is False and status["modules"] == [], status
    finally:
        load.stop()
    assert proc.poll() is None, "the service ended"
    assert load.sent > 500 and load.failed == [], (load.sent, load.failed[:3])
    proc.kill()
    _, stderr = proc.communicate()
    assert "Traceback" not in stderr, stderr
