"""Line profile analysis: naming the function, picking it from a suspect's stack, reading and marking the table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from leakbench.analysis.line_profile import (
    FunctionProfile,
    ProfileLine,
    choose_from_suspects,
    function_lines,
    mark_line,
    parse_event,
    parse_function_spec,
)
from leakbench.analysis.model import Frame, Suspect
from leakbench.errors import UsageError
from leakbench.report.document import to_markdown
from leakbench.report.line_profile_section import line_profile_blocks
from leakbench.stages.line_profile import repro_target
from leakbench.target import make_target

SOURCE = textwrap.dedent(
    """\
    import functools


    class Cache:
        @functools.lru_cache
        def put(self, key):
            def inner():
                return [key] * 10
            return inner()


    def handler(rows):
        kept = [r * 2 for r in rows]
        return kept


    x = handler([1])
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "store.py").write_text("def save(item):\n    return item\n")
    path = tmp_path / "app.py"
    path.write_text(SOURCE)
    return path


def suspect(file: str, line: int, function: str, traceback: tuple[Frame, ...] = (), visible: bool = True) -> Suspect:
    return Suspect(file, line, function, 1000, 1, 1, ("tracemalloc",), visible, traceback=traceback)


def is_user(file: str) -> bool:
    return not file.startswith("/usr/lib/python3.11/")


def test_qualified_names_as_co_qualname_spells_them(app: Path) -> None:
    lines = function_lines(str(app))
    assert lines == {"Cache.put": 5, "Cache.put.<locals>.inner": 7, "handler": 12}  # a decorator's line first


def test_function_spec_forms(app: Path) -> None:
    dirs = [str(app.parent)]
    by_path = parse_function_spec("app.py:Cache.put", dirs)
    assert (by_path.qualname, by_path.file, by_path.line) == ("Cache.put", str(app), 5)
    by_module = parse_function_spec("pkg.store:save", dirs)
    assert (by_module.module, by_module.file, by_module.line) == ("pkg.store", str(app.parent / "pkg/store.py"), 1)
    bare = parse_function_spec("handler", dirs, script=str(app))
    assert (bare.file, bare.line) == (str(app), 12)
    installed = parse_function_spec("json:dumps", dirs)
    assert (installed.module, installed.file) == ("json", None)  # the target's interpreter finds it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app.py:nothing", "defines no function nothing"),
        ("missing.py:f", "no file missing.py"),
        ("app.py:", "not a function name"),
        ("a-b:f", "neither a module name nor a .py file"),
    ],
)
def test_bad_function_specs_say_what_is_wrong(app: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_function_spec(text, [str(app.parent)])


def test_innermost_user_function_on_the_stack_is_chosen(app: Path) -> None:
    stack = (Frame(str(app), 17, "<module>"), Frame(str(app), 13, "handler"))
    choice = choose_from_suspects([suspect(str(app), 13, "handler", stack)], is_user)
    assert choice is not None
    assert (choice.spec.qualname, choice.spec.file, choice.spec.line) == ("handler", str(app), 12)
    assert "allocates in it" in choice.because


def test_a_nested_function_is_chosen_by_its_qualified_name(app: Path) -> None:
    stack = (Frame(str(app), 17, "<module>"), Frame(str(app), 9, "Cache.put"), Frame(str(app), 8, "x"))
    choice = choose_from_suspects([suspect(str(app), 8, "x", stack)], is_user)
    assert choice is not None and choice.spec.qualname == "Cache.put.<locals>.inner"


def test_library_allocation_profiles_the_users_caller(app: Path) -> None:
    lib = "/usr/lib/python3.11/copy.py"
    stack = (Frame(str(app), 17, "<module>"), Frame(str(app), 13, "handler"), Frame(lib, 70, "deepcopy"))
    choice = choose_from_suspects([suspect(lib, 70, "deepcopy", stack)], is_user)
    assert choice is not None and choice.spec.qualname == "handler"
    assert "library code" in choice.because and "deepcopy" in choice.because


def test_module_level_suspects_are_passed_over(app: Path) -> None:
    top = suspect(str(app), 17, "<module>", (Frame(str(app), 17, "<module>"),))
    second = suspect(str(app), 13, "handler", (Frame(str(app), 17, "<module>"), Frame(str(app), 13, "handler")))
    assert choose_from_suspects([top], is_user) is None
    choice = choose_from_suspects([top, second], is_user)
    assert choice is not None and choice.spec.qualname == "handler"


def test_a_native_suspect_without_traceback_uses_its_own_line(app: Path) -> None:
    choice = choose_from_suspects([suspect(str(app), 13, "handler", visible=False)], is_user)
    assert choice is not None and choice.spec.qualname == "handler"
    assert choice.suspect is not None and not choice.suspect.visible_to_tracemalloc


def test_event_is_read_with_source_text_and_largest_increment_marked(app: Path) -> None:
    event = {
        "event": "line-profile",
        "reason": "calls",
        "backend": "tracemalloc",
        "calls_wanted": 5,
        "calls_started": 5,
        "calls_completed": 5,
        "functions": [
            {
                "file": str(app),
                "line": 12,
                "qualname": "handler",
                "rows": [[12, 40, 900, 5], [13, 5000, 6000, 5], [14, -200, 5800, 5]],
            }
        ],
    }
    profile = parse_event(event)
    (table,) = profile.functions
    assert table.lines[1] == ProfileLine(13, 6000, 5000, 5, "    kept = [r * 2 for r in rows]")
    assert table.total_increment == 4840
    marked = mark_line(table)
    assert marked is not None and marked.line == 13


def test_nothing_is_marked_when_no_line_kept_memory() -> None:
    table = FunctionProfile("f.py", 1, "f", (ProfileLine(1, 0, 0, 1), ProfileLine(2, 0, -10, 1)))
    assert mark_line(table) is None


def test_repro_command_becomes_the_target(app: Path) -> None:
    base = make_target(str(app), ["--all"], cwd=str(app.parent), memory_limit="1GB")
    spec = repro_target("python3 app.py --articles 50", base)
    assert (spec.script, spec.args, spec.memory_limit_bytes) == (str(app), ("--articles", "50"), 1_000_000_000)
    module = repro_target("-m pkg.store 3", base)
    assert (module.module, module.args) == ("pkg.store", ("3",))
    with pytest.raises(UsageError, match="no script"):
        repro_target("python", base)


def test_report_section_shows_the_table_with_the_marked_line() -> None:
    details = {
        "line_profile": {
            "status": "ok",
            "message": "",
            "data": {
                "function": {"qualname": "handler", "file": "/app/app.py", "line": 12},
                "profiled": {"qualname": "handler", "file": "/app/app.py", "line": 12},
                "chosen_because": "the top suspect app.py:13 (tracemalloc) allocates in it",
                "repro": {"argv": ["python", "app.py"], "stopped": "after 5 completed call(s), as asked"},
                "backend": "tracemalloc",
                "backend_note": "Memory is Python's traced heap.",
                "table": [
                    {
                        "line": 12,
                        "mem_bytes": 900,
                        "increment_bytes": 40,
                        "occurrences": 5,
                        "text": "def handler(rows):",
                        "marked": False,
                    },
                    {
                        "line": 13,
                        "mem_bytes": 6000,
                        "increment_bytes": 5000,
                        "occurrences": 5,
                        "text": "    kept = [r]",
                        "marked": True,
                    },
                ],
                "marked": {
                    "line": 13,
                    "increment_bytes": 5000,
                    "occurrences": 5,
                    "text": "kept = [r]",
                    "share": 0.99,
                    "is_top_suspect": True,
                },
            },
        }
    }
    markdown = to_markdown(line_profile_blocks(details))
    assert "| **13** | 5.9 KiB | **4.9 KiB ◀ most** | 5 |" in markdown
    assert "the same line as the top suspect" in markdown
    assert "**Backend tracemalloc:** Memory is Python's traced heap." in markdown
    assert line_profile_blocks({}) == []
