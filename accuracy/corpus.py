"""The accuracy corpus: what each program is and what leakbench should say about it.

A synthetic program is one file under `programs/leak/` or `programs/no_leak/` (or a folder there with a
`main.py`). It declares its expectations in comment lines near its top:

    # accuracy.verdict: leak                        (or no-leak)
    # accuracy.root: module global __main__.CACHE   (words retention[0].root must contain; `a | b` = either)
    # accuracy.requires: cachetools==5.3.3          (installed into a venv of its own; then run with --python)
    # accuracy.args: 200                            (arguments passed to the program)
    # accuracy.allow: inconclusive                  (a no-leak program short enough that inconclusive is fine)

and marks the line the report should name among its top three suspects with `# expect: suspect` (the
examples' convention; several marked lines, in any of the program's files, are alternatives).

A package pair is a folder under `packages/` with `repro.py` (the same loop for both releases) and
`pair.toml` naming the package, its leaky and fixed releases and the issue that reported the leak; it
yields two programs, `<pair>@<leaky>` (expected leak) and `<pair>@<fixed>` (expected no-leak).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
PACKAGES = HERE / "packages"
CACHE = HERE / ".cache"

MARKER = "# expect: suspect"
_DECLARATION = re.compile(r"^#\s*accuracy\.(\w+):\s*(.*?)\s*$")


@dataclass(frozen=True)
class Program:
    name: str
    script: Path
    expected: str  # "leak" or "no-leak"
    lines: tuple[tuple[Path, int], ...] = ()  # any of them among the top 3 suspects is a hit
    package_lines: tuple[str, ...] = ()  # "pkg/module.py:123", matched against the end of a suspect's path
    roots: tuple[str, ...] = ()  # any of them in retention[0].root is a hit; empty = no Python root to name
    requires: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    allow_inconclusive: bool = False
    group: str = "synthetic"  # synthetic | package
    issue: str = ""
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.script.parent


def _marked_lines(files: list[Path]) -> tuple[tuple[Path, int], ...]:
    found = []
    for path in files:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if text.rstrip().endswith(MARKER):
                found.append((path.resolve(), number))
    return tuple(found)


def _alternatives(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("|") if part.strip())


def _synthetic(script: Path, files: list[Path], name: str) -> Program:
    decl: dict[str, str] = {}
    for text in script.read_text().splitlines()[:40]:
        match = _DECLARATION.match(text.strip())
        if match:
            decl[match.group(1)] = match.group(2)
    expected = decl.get("verdict", "")
    if expected not in ("leak", "no-leak"):
        raise ValueError(f"{script}: '# accuracy.verdict: leak|no-leak' missing or wrong ({expected!r})")
    lines = _marked_lines(files)
    if expected == "leak" and not lines:
        raise ValueError(f"{script}: a leak program marks its line with '{MARKER}'")
    return Program(
        name=name,
        script=script.resolve(),
        expected=expected,
        lines=lines,
        roots=_alternatives(decl.get("root", "")),
        requires=tuple(decl.get("requires", "").split()),
        args=tuple(decl.get("args", "").split()),
        allow_inconclusive=decl.get("allow", "") == "inconclusive",
    )


def synthetic_programs() -> list[Program]:
    programs = []
    for kind in ("no_leak", "leak"):
        for entry in sorted((PROGRAMS / kind).iterdir()):
            if entry.suffix == ".py":
                programs.append(_synthetic(entry, [entry], f"{kind}/{entry.stem}"))
            elif entry.is_dir() and (entry / "main.py").exists():
                files = sorted(entry.glob("*.py"))
                programs.append(_synthetic(entry / "main.py", files, f"{kind}/{entry.name}"))
    return programs


@dataclass(frozen=True)
class Pair:
    name: str
    folder: Path
    package: str
    leaky: str
    fixed: str
    requires: tuple[str, ...]  # other pins both venvs get (e.g. a dependency of the era)
    issue: str
    notes: str
    args: tuple[str, ...]
    roots: tuple[str, ...]
    package_lines: tuple[str, ...]

    def requirements(self, version: str) -> tuple[str, ...]:
        return (f"{self.package}=={version}", *self.requires)


def pairs() -> list[Pair]:
    found = []
    for toml in sorted(PACKAGES.glob("*/pair.toml")):
        data = tomllib.loads(toml.read_text())
        found.append(
            Pair(
                name=toml.parent.name,
                folder=toml.parent.resolve(),
                package=data["package"],
                leaky=data["leaky"],
                fixed=data["fixed"],
                requires=tuple(data.get("requires", [])),
                issue=data.get("issue", ""),
                notes=data.get("notes", ""),
                args=tuple(data.get("args", [])),
                roots=tuple(data.get("roots", [])),
                package_lines=tuple(data.get("package_lines", [])),
            )
        )
    return found


def package_programs() -> list[Program]:
    programs = []
    for pair in pairs():
        repro = pair.folder / "repro.py"
        lines = _marked_lines([repro])
        for version, expected in ((pair.leaky, "leak"), (pair.fixed, "no-leak")):
            programs.append(
                Program(
                    name=f"pkg/{pair.name}@{version}",
                    script=repro,
                    expected=expected,
                    lines=lines,
                    package_lines=pair.package_lines,
                    roots=pair.roots if expected == "leak" else (),
                    requires=pair.requirements(version),
                    args=pair.args,
                    group="package",
                    issue=pair.issue,
                    notes=pair.notes,
                )
            )
    return programs


def all_programs() -> list[Program]:
    return synthetic_programs() + package_programs()


def select(programs: list[Program], patterns: list[str]) -> list[Program]:
    """Programs whose name contains any of `patterns` (all of them when there is none)."""
    if not patterns:
        return programs
    chosen = [p for p in programs if any(pat in p.name for pat in patterns)]
    if not chosen:
        raise SystemExit(f"accuracy: no program matches {' '.join(patterns)} (see --list)")
    return chosen
