"""What to run: the target program as the user would run it, checked before anything starts."""

from __future__ import annotations

import os
import shutil
import subprocess
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
        _check_module(interpreter, target, workdir)
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


# Finds a module the way `python -m` would, without running any of its code (not even its package's
# __init__): the finders on sys.meta_path are asked for each part, with the parent's search locations.
_FIND_MODULE = """
import sys
name = sys.argv[1]
path = None
spec = None
parts = name.split(".")
for i in range(len(parts)):
    full = ".".join(parts[: i + 1])
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(full, path)
        except Exception:
            spec = None
        if spec is not None:
            break
    if spec is None:
        print(full)
        sys.exit(3)
    path = spec.submodule_search_locations
    if path is None and i + 1 < len(parts):
        print(full + " (not a package)")
        sys.exit(3)
if spec.submodule_search_locations is not None:
    main = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        try:
            main = find(name + ".__main__", spec.submodule_search_locations) if find else None
        except Exception:
            main = None
        if main is not None:
            break
    if main is None:
        print(name + ".__main__")
        sys.exit(4)
"""


def _check_module(python: str, module: str, cwd: str) -> None:
    """Refuse `-m MODULE` when the target's interpreter cannot find it (as `python -m` would fail at once).

    Nothing of the module runs; when the check itself cannot run, the module is given the benefit of doubt.
    """
    try:
        done = subprocess.run(
            [python, "-c", _FIND_MODULE, module], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    missing = done.stdout.strip()
    if done.returncode == 3:
        raise UsageError(
            f"-m {module}: no module named {missing or module} for {python}",
            hint="check the name, the folder you run from, or --python",
        )
    if done.returncode == 4:
        raise UsageError(f"-m {module}: it is a package without a __main__ module, so it cannot be run")


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
