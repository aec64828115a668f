"""Helpers for the native tracker's tests: build the fixture library, run a Python program under the
tracker, read what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from leakbench.analysis.native import leaks
from leakbench.native.capture import Capture, find_captures, read_capture
from leakbench.native.runner import preload_env, tracker_library_path
from leakbench.native.symbolize import StackFrame, resolve_stacks

FIXTURES = Path(__file__).parent / "fixtures"
# the interpreter itself, not a wrapper script; LEAKBENCH_TEST_TARGET_PYTHON runs these targets on another
# (e.g. python3.13: the tracker's tests against that version's frames)
PYTHON = os.path.realpath(os.environ.get("LEAKBENCH_TEST_TARGET_PYTHON") or sys.executable)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.native)


@pytest.fixture(scope="session")
def tracker() -> Path:
    return tracker_library_path()


def compile_library(source: Path, out: Path, *extra: str) -> Path:
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-g", "-pthread", str(source), "-o", str(out), *extra],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def fixture_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_library(FIXTURES / "fixture.c", tmp_path_factory.mktemp("fixture") / "libfixture.so", "-ldl")


@dataclass
class Tracked:
    proc: subprocess.CompletedProcess[str]
    script: Path
    template: str

    def captures(self) -> list[Capture]:
        return [read_capture(p) for p in find_captures(self.template)]

    def capture(self) -> Capture:
        found = self.captures()
        assert len(found) == 1, f"expected one capture, found {[c.path for c in found]}"
        return found[0]

    def line(self, marker: str) -> int:
        """The line of the target script ending with `# <marker>`."""
        for number, text in enumerate(self.script.read_text().splitlines(), 1):
            if text.rstrip().endswith(f"# {marker}"):
                return number
        raise AssertionError(f"no '# {marker}' in the script")


def run_tracked(
    tmp_path: Path,
    source: str,
    *,
    timeout: float = 90,
    check: bool = True,
    env: dict[str, str] | None = None,
    **options: int,
) -> Tracked:
    script = tmp_path / "target.py"
    script.write_text(textwrap.dedent(source))
    template = str(tmp_path / "capture.%p.lbt")
    environment = preload_env(template, **options)
    environment.update(env or {})
    proc = subprocess.run(
        [PYTHON, str(script)], env=environment, capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )
    if check:
        assert proc.returncode == 0, f"target failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return Tracked(proc, script, template)


def frames_of(capture: Capture) -> dict[int, tuple[StackFrame, ...]]:
    return resolve_stacks(capture)


__all__ = ["PYTHON", "Tracked", "compile_library", "frames_of", "leaks", "run_tracked"]
