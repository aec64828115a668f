"""Every CPython this machine has: the versions leakbench supports, found on PATH (the binary must really run:
a pyenv shim for a version not selected does not) or under ~/.pyenv/versions; each gets a bare target venv
(its own standard library plus numpy for the examples), cached in .venv-targets/ across sessions.

A version that is not found is skipped, by name. The longest tests (`heavy_interpreter`) run on the newest
version found in `make test`, on every version with LEAKBENCH_ALL_VERSIONS=1 (`make test-versions`)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

VERSIONS = ("3.11", "3.12", "3.13")
VENVS = ROOT / ".venv-targets"


@dataclass(frozen=True)
class Interpreter:
    version: str
    python: str  # the interpreter itself

    def config(self, name: str) -> str:
        return _ask(self.python, f"import sysconfig; print(sysconfig.get_config_var({name!r}) or '')")

    @property
    def include(self) -> str:
        return _ask(self.python, "import sysconfig; print(sysconfig.get_paths()['include'])")


def _ask(python: str, code: str) -> str:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def _runs_as(python: str, version: str) -> bool:
    try:
        got = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return got.returncode == 0 and got.stdout.strip() == version


@cache
def find_interpreter(version: str) -> Interpreter | None:
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob(f"{version}*/bin/python{version}"))
    for candidate in candidates:
        if candidate and _runs_as(candidate, version):
            return Interpreter(version, os.path.realpath(candidate))
    return None


def interpreter_or_skip(version: str) -> Interpreter:
    found = find_interpreter(version)
    if found is None:
        pytest.skip(f"python{version} not found (on PATH or in ~/.pyenv/versions)")
    return found


@pytest.fixture(params=VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def interpreter(request: pytest.FixtureRequest) -> Interpreter:
    return interpreter_or_skip(request.param)


def newest_found() -> str | None:
    return next((v for v in reversed(VERSIONS) if find_interpreter(v) is not None), None)


@pytest.fixture(params=VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def heavy_interpreter(request: pytest.FixtureRequest) -> Interpreter:
    """For the tests that take tens of seconds each: the newest version found, or all with
    LEAKBENCH_ALL_VERSIONS=1, so that `make test` stays short."""
    found = interpreter_or_skip(request.param)
    if request.param != newest_found() and os.environ.get("LEAKBENCH_ALL_VERSIONS") != "1":
        pytest.skip(f"python{request.param}: the long tests run on every version in `make test-versions`")
    return found


@cache
def bare_venv(version: str) -> Path:
    """The python of a venv holding only the standard library, pip and numpy: no psutil, no memory_profiler,
    nothing of leakbench's. Made once and reused (.venv-targets/ is ignored by git)."""
    interpreter = interpreter_or_skip(version)
    venv = VENVS / f"py{version}"
    python = venv / "bin" / "python"
    ready = venv / ".leakbench-ready"
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"py{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test processes running side by side make it once
        _make_bare_venv(interpreter, venv, python, ready)
    return python


def _make_bare_venv(interpreter: Interpreter, venv: Path, python: Path, ready: Path) -> None:
    version = interpreter.version
    if not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([interpreter.python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if installed.returncode != 0:
            pytest.skip(f"cannot install numpy into a python{version} venv: {installed.stderr.strip()[-300:]}")
        ready.write_text("numpy\n")


@pytest.fixture
def target_python(interpreter: Interpreter) -> Path:
    return bare_venv(interpreter.version)


@pytest.fixture
def heavy_target_python(heavy_interpreter: Interpreter) -> Path:
    return bare_venv(heavy_interpreter.version)


def own_version() -> str:
    return sysconfig.get_python_version()


__all__ = ["Interpreter", "bare_venv", "find_interpreter", "interpreter_or_skip", "own_version"]
