"""What to run: the target program as the user would run it, checked before anything starts."""

from __future__ import annotations

import os
import shutil
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from leakbench.errors import UsageError


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """`python SCRIPT ARGS` or `python -m MODULE ARGS`, in `cwd`, with `python` as the interpreter."""

    python: str
    args: tuple[str, ...]
    script: str | None = None
    module: str | None = None
    cwd: str = "."
    memory_limit_bytes: int | None = None

    @property
    def argv(self) -> list[str]:
        """The command a user would type to run the target without leakbench."""
        head = ["-m", self.module] if self.module else [self.script or ""]
        return ["python", *head, *self.args]

    @property
    def name(self) -> str:
        return self.module or Path(self.script or "target").stem


def make_target(
    target: str,
    args: list[str] | tuple[str, ...] = (),
    *,
    module: bool = False,
    python: str | None = None,
    memory_limit: str | int | None = None,
    cwd: str | None = None,
) -> TargetSpec:
    """Validate what the user asked to run; raise UsageError naming what is wrong."""
    interpreter = _interpreter(python)
    limit = parse_size(memory_limit) if isinstance(memory_limit, str) else memory_limit
    workdir = os.path.abspath(cwd or os.getcwd())
    if module:
        if not target or not all(part.isidentifier() for part in target.split(".")):
            raise UsageError(f"-m {target!r}: not a module name")
        return TargetSpec(interpreter, tuple(args), module=target, cwd=workdir, memory_limit_bytes=limit)
    path = Path(target)
    if not path.exists():
        raise UsageError(f"target script not found: {target}", hint="give the path of a Python file, or -m MODULE")
    if path.is_dir():
        if (path / "__main__.py").exists():
            return TargetSpec(interpreter, tuple(args), script=str(path), cwd=workdir, memory_limit_bytes=limit)
        raise UsageError(f"target {target} is a folder without a __main__.py")
    _check_python_source(path)
    return TargetSpec(interpreter, tuple(args), script=str(path), cwd=workdir, memory_limit_bytes=limit)


def _interpreter(python: str | None) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(python) if os.sep not in python else python
    if not found or not os.access(found, os.X_OK):
        raise UsageError(f"--python {python}: no such interpreter", hint="give the path of the target's python")
    return found


def _check_python_source(path: Path) -> None:
    """Refuse a file that is not Python before spending a run on it."""
    try:
        with tokenize.open(path) as handle:
            source = handle.read()
    except (UnicodeDecodeError, SyntaxError) as exc:
        raise UsageError(f"target {path} is not a Python source file ({exc})") from None
    except OSError as exc:
        raise UsageError(f"cannot read target {path}: {exc.strerror}") from None
    if "\x00" in source:
        raise UsageError(f"target {path} is not a Python source file (it holds NUL bytes: a binary?)")
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UsageError(
            f"target {path} is not valid Python: {exc.msg} at line {exc.lineno}",
        ) from None
    except ValueError as exc:  # null bytes: a binary file
        raise UsageError(f"target {path} is not a Python source file ({exc})") from None


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """'1GB' -> 1_000_000_000, '512MiB' -> 536870912; UsageError for anything else."""
    raw = text.strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or value <= 0:
        raise UsageError(
            f"--memory-limit {text!r}: not a size",
            hint="write a number with a unit, e.g. 512MB, 1GB or 2GiB",
        )
    return int(value * _UNITS[unit])
