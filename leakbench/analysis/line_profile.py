"""Line-by-line memory of one function: which function to profile, and what its table says.

Pure functions over plain values (the probe's `line-profile` event, the earlier stages' suspects, source
files): naming the function from `--function` or from a suspect's stack, reading the table, and marking the
line that added the most memory.
"""

from __future__ import annotations

import ast
import linecache
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from leakbench.analysis.model import Suspect
from leakbench.errors import UsageError

BACKENDS = ("auto", "tracemalloc", "psutil")

BACKEND_NOTES = {
    "tracemalloc": (
        "Memory is Python's traced heap (tracemalloc; numpy's buffers report to it too): increments are exact "
        "byte counts of what each line allocated and did not free, callees included, unaffected by the "
        "allocator reusing memory. It does not see memory that C code allocates behind Python's allocators, "
        "and allocations made by other threads while a line runs are charged to that line."
    ),
    "psutil": (
        "Memory is the process's RSS (memory_profiler's psutil backend, read from /proc as psutil does), used when "
        "the suspect's memory is invisible to tracemalloc (native code). RSS moves only when pages are touched or "
        "given back: "
        "increments are noisy for small allocations, and when the allocator reuses freed memory a line's "
        "growth can be charged to a later line, or to none."
    ),
}


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """The function to profile: its qualified name, and where it lives (a file, a module, or both)."""

    qualname: str
    file: str | None = None
    module: str | None = None
    line: int = 0  # its first line, when the source was found

    def label(self) -> str:
        where = self.module or (Path(self.file).name if self.file else "")
        return f"{where}:{self.qualname}" if where else self.qualname


@dataclass(frozen=True, slots=True)
class Choice:
    """The function picked for the repro, and why, in words for the report."""

    spec: FunctionSpec
    because: str
    suspect: Suspect | None = None


@dataclass(frozen=True, slots=True)
class ProfileLine:
    line: int
    mem_bytes: int  # the largest reading seen after the line ran
    increment_bytes: int  # summed over every time it ran
    occurrences: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class FunctionProfile:
    file: str
    first_line: int
    qualname: str
    lines: tuple[ProfileLine, ...]

    @property
    def total_increment(self) -> int:
        return sum(row.increment_bytes for row in self.lines)


@dataclass(frozen=True, slots=True)
class LineProfile:
    """What the probe wrote: the table of each profiled function (normally one) and how the run went."""

    backend: str
    reason: str  # "calls" (enough completed calls), "budget", "target-end", "exit"
    calls_wanted: int
    calls_started: int
    calls_completed: int
    functions: tuple[FunctionProfile, ...]
    text_path: str | None = None
    via: str | None = None  # the library function whose caller was profiled instead

    @property
    def ran(self) -> bool:
        return self.calls_started > 0 and any(f.lines for f in self.functions)


# -- naming the function -------------------------------------------------------------------------------------
def parse_function_spec(text: str, search_dirs: Sequence[str], script: str | None = None) -> FunctionSpec:
    """`path.py:qualname`, `module:qualname` or a bare qualname (looked for in the script first)."""
    text = text.strip()
    where, sep, qualname = text.rpartition(":")
    if not sep:
        where, qualname = "", text
    if not qualname or not all(part.isidentifier() or part == "<locals>" for part in qualname.split(".")):
        raise UsageError(
            f"--function {text!r}: not a function name",
            hint="write module:qualname or path.py:function, e.g. data_pipeline:normalize_vectors",
        )
    if not where:
        if script and qualname in function_lines(os.path.abspath(script)):
            return _in_file(os.path.abspath(script), qualname, text)
        return FunctionSpec(qualname)
    if where.endswith(".py") or os.sep in where:
        found = _find(where, search_dirs)
        if found is None:
            raise UsageError(f"--function {text!r}: no file {where}", hint=f"looked in {', '.join(search_dirs)}")
        return _in_file(found, qualname, text)
    if not all(part.isidentifier() for part in where.split(".")):
        raise UsageError(f"--function {text!r}: {where!r} is neither a module name nor a .py file")
    relative = where.replace(".", os.sep)
    for candidate in (relative + ".py", os.path.join(relative, "__init__.py")):
        found = _find(candidate, search_dirs)
        if found is not None:
            spec = _in_file(found, qualname, text)
            return FunctionSpec(qualname, spec.file, where, spec.line)
    return FunctionSpec(qualname, None, where)  # an installed module: the target's interpreter finds it


def _find(path: str, search_dirs: Sequence[str]) -> str | None:
    if os.path.isabs(path):
        return path if os.path.isfile(path) else None
    for folder in search_dirs:
        candidate = os.path.join(folder, path)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _in_file(file: str, qualname: str, text: str) -> FunctionSpec:
    found = function_lines(file)
    if qualname not in found:
        names = ", ".join(sorted(found)[:12]) or "none"
        raise UsageError(
            f"--function {text!r}: {Path(file).name} defines no function {qualname}", hint=f"it has: {names}"
        )
    return FunctionSpec(qualname, file, None, found[qualname])


def function_lines(file: str) -> dict[str, int]:
    """Qualified name (as `co_qualname` spells it) -> first line, for every function in a source file."""
    return {name: first for name, (first, _) in function_spans(file).items()}


@lru_cache(maxsize=64)
def function_spans(file: str) -> dict[str, tuple[int, int]]:
    """Qualified name -> (first line, decorators included as in co_firstlineno; last line)."""
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            tree = ast.parse(handle.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return {}
    out: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.setdefault(name, (first, child.end_lineno or child.lineno))
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def choose_from_suspects(suspects: Iterable[Suspect], is_user: Callable[[str], bool]) -> Choice | None:
    """The innermost function of the user's own code on the top suspect's stack (None: nothing to profile)."""
    for suspect in suspects:
        frames = [(f.file, f.line, f.function) for f in suspect.traceback] or [
            (suspect.file, suspect.line, suspect.function)
        ]
        innermost = frames[-1]
        for file, line, function in reversed(frames):
            if not is_user(file):
                continue
            if not function or function in ("<module>", "?"):
                break  # module-level code: not a function memory_profiler can profile; try the next suspect
            qualname = _qualname_at(file, line) or function
            spec = FunctionSpec(qualname, file, None, function_lines(file).get(qualname, 0))
            where = f"{Path(suspect.file).name}:{suspect.line}"
            because = f"the top suspect {where} ({', '.join(suspect.stages)}) allocates in it"
            if (file, line) != innermost[:2]:
                lib = f"{innermost[2] or '?'} ({Path(innermost[0]).name}:{innermost[1]})"
                because = (
                    f"the top suspect's memory is allocated in library code, {lib}, which leakbench does not "
                    f"profile (the fix is rarely there); {qualname} is the innermost function of your code that "
                    "calls into it"
                )
            return Choice(spec, because, suspect)
    return None


def _qualname_at(file: str, line: int) -> str | None:
    """The innermost function around `line`, as co_qualname spells it."""
    around = [(first, name) for name, (first, last) in function_spans(file).items() if first <= line <= last]
    return max(around)[1] if around else None


# -- reading the table ---------------------------------------------------------------------------------------
def parse_event(event: Mapping[str, Any]) -> LineProfile:
    """The probe's `line-profile` event (plain JSON) as a LineProfile, with the source text of each line."""
    functions = []
    for f in event.get("functions", []):
        file = str(f["file"])
        rows = tuple(
            ProfileLine(int(line), int(mem), int(inc), int(occ), linecache.getline(file, int(line)).rstrip())
            for line, inc, mem, occ in f.get("rows", [])
        )
        functions.append(FunctionProfile(file, int(f["line"]), str(f["qualname"]), rows))
    return LineProfile(
        backend=str(event.get("backend", "tracemalloc")),
        reason=str(event.get("reason", "")),
        calls_wanted=int(event.get("calls_wanted", 0)),
        calls_started=int(event.get("calls_started", 0)),
        calls_completed=int(event.get("calls_completed", 0)),
        functions=tuple(functions),
        text_path=event.get("text"),
    )


def mark_line(profile: FunctionProfile) -> ProfileLine | None:
    """The line with the largest total increment; None when no line added memory."""
    best = max(profile.lines, key=lambda row: (row.increment_bytes, -row.line), default=None)
    return best if best is not None and best.increment_bytes > 0 else None


def main_function(profile: LineProfile) -> FunctionProfile | None:
    """The table to show: the function that ran the most lines (there is one unless a fork duplicated it)."""
    return max(profile.functions, key=lambda f: sum(r.occurrences for r in f.lines), default=None)
