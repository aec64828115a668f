"""Playbooks: listing, showing, guided runs through a terminal, resuming, and the service playbook."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, leakbench, marked_line

TARGETS = ROOT / "tests" / "integration" / "targets"


def test_list_names_every_builtin() -> None:
    r = leakbench("playbook", "list")
    assert r.code == 0, r.stderr
    for name in ("full", "quick", "native", "oom", "service"):
        assert name in r.stdout


def test_show_lists_stages_with_their_parameters() -> None:
    r = leakbench("playbook", "show", "full")
    assert r.code == 0
    assert "stages[0] rss" in r.stdout and "native" in r.stdout and "frames=25" in r.stdout


class Terminal:
    """leakbench on a pseudo-terminal, typed at as a person would."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, COLUMNS="140", TERM="xterm")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leakbench", *args], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, text: bytes, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < end, self.screen.decode(errors="replace")[-2000:]
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the other side closed
                    assert text in self.screen, self.screen.decode(errors="replace")[-2000:]

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, timeout: float = 180) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    break
        return self.proc.wait(timeout=max(1.0, end - time.monotonic()))


@pytest.mark.integration
def test_step_quit_then_resume_finishes_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    script = EXAMPLES / "native_leak" / "app.py"
    term = Terminal("investigate", "--step", "--playbook", "native", "--out", str(run), str(script), "80")
    term.wait_for(b"[c]ontinue")
    assert b"next native" in term.screen.replace(b"\x1b[1m", b"").replace(b"\x1b[0m", b"")
    term.type(b"q\r")
    assert term.finish() == 0
    state = json.loads((run / "state.json").read_text())
    assert state["finished"] is False and state["next_group"] == 1
    assert json.loads((run / "evidence.json").read_text())["complete"] is False
    resumed = leakbench("playbook", "resume", str(run))
    assert resumed.code == 0, resumed.stderr
    evidence = json.loads((run / "evidence.json").read_text())
    assert evidence["complete"] is True
    assert evidence["stages"]["native"]["status"] == "ok"
    assert evidence["stages"]["tracemalloc"]["status"] == "ok"
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(script), marked_line(script, "suspect"))
    assert "leaky_process" in top["native_frames"]


@pytest.mark.integration
def test_step_skip_marks_the_next_stage_skipped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    term = Terminal(
        "investigate", "--step", "--playbook", "native", "--out", str(run), str(EXAMPLES / "mem_leaker.py"), "40"
    )
    term.wait_for(b"[c]ontinue")
    term.type(b"s\r")
    assert term.finish() == 0
    evidence = json.loads((run / "evidence.json").read_text())
    assert evidence["stages"]["native"] == {"status": "skipped", "message": "skipped in the guided run"}
    assert evidence["complete"] is True


def test_without_a_terminal_step_never_prompts(tmp_path: Path) -> None:
    r = leakbench(
        "investigate",
        "--step",
        "--playbook",
        "quick",
        "--out",
        str(tmp_path / "run"),
        str(EXAMPLES / "mem_leaker.py"),
        "20",
    )
    assert r.code == 0, r.stderr
    assert "[c]ontinue" not in r.stderr + r.stdout


def test_resume_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    r = leakbench("playbook", "resume", str(tmp_path))
    assert r.code == 2 and "not a resumable run directory" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_service_playbook_stops_the_server_and_runs_the_load_beside_it(tmp_path: Path) -> None:
    port = str(_free_port())
    server = TARGETS / "leaky_server.py"
    load = f"{sys.executable} {TARGETS / 'send_requests.py'} {port}"
    out = str(tmp_path / "run")
    r = leakbench("playbook", "run", "--duration", "8", "--load", load, "--out", out, "service", str(server), port)
    assert r.code == 0, r.stderr
    evidence = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert evidence["target"]["exit"]["status"] == "timeout"
    assert evidence["verdict"]["kind"] == "leak"
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(server), marked_line(server, "suspect"))
    assert "sent" in (tmp_path / "run" / "runs" / "run-1" / "load.log").read_text()
