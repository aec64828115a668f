"""Shared helpers: run the real `leakbench` command, find example lines by their `# expect:` markers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A shell without job control starts its background commands with SIGINT ignored, and every process they
# start inherits that: the targets would then ignore leakbench's SIGINT as they would a Ctrl-C. The tests
# check what a user at a terminal sees, so the suite restores Python's handler (children get the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
EXAMPLES = ROOT / "examples"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    out: Path | None

    def evidence(self) -> dict[str, Any]:
        """The run's evidence.json, checked against the contract on every read."""
        from leakbench.report.schema import problems

        assert self.out is not None
        data = json.loads((self.out / "evidence.json").read_text())
        assert problems(data) == [], problems(data)
        return data


def leakbench(*args: str, cwd: Path | None = None, timeout: float = 240, stdin: str | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "leakbench", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin if stdin is not None else "",
    )
    out = None
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
        if not out.is_absolute():
            out = (cwd or ROOT) / out
    return Result(proc.returncode, proc.stdout, proc.stderr, out)


def marked_line(path: Path, marker: str) -> int:
    """The line of `path` that carries `# expect: <marker>`."""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if text.rstrip().endswith(f"# expect: {marker}"):
            return number
    raise AssertionError(f"no '# expect: {marker}' in {path}")


@pytest.fixture
def run_out(tmp_path: Path) -> Path:
    return tmp_path / "run"
