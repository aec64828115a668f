"""Each CPython found (3.11, 3.12, 3.13), as the target's interpreter: the tracker's layout checks compile
against its headers, its native stacks hold Python frames as on 3.11, and leakbench runs through --python on
a bare venv (standard library and numpy only), children started by spawn and forkserver included."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from leakbench.native.capture import find_captures, read_capture
from leakbench.native.runner import preload_env
from leakbench.native.symbolize import EVAL_FUNCTION, resolve_stacks
from tests.conftest import EXAMPLES, ROOT, leakbench, marked_line
from tests.versions.conftest import Interpreter

pytestmark = [pytest.mark.integration, pytest.mark.native]
TARGETS = Path(__file__).parent / "targets"
PYSTACK = ROOT / "native_tracker" / "src" / "pystack.c"


def test_tracker_layout_checks_compile_against_the_interpreters_headers(interpreter: Interpreter) -> None:
    include = Path(interpreter.include)
    if not (include / "Python.h").exists():
        pytest.skip(f"python{interpreter.version} has no headers in {include}")
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "no C compiler"
    # LBT_REQUIRE_LAYOUT_CHECK: an #error unless this version's static assertions were compiled
    cmd = [compiler, "-std=gnu11", "-fsyntax-only", "-DLBT_REQUIRE_LAYOUT_CHECK", f"-I{PYSTACK.parent}", f"-I{include}"]
    proc = subprocess.run([*cmd, str(PYSTACK)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_native_stacks_hold_the_python_frames(interpreter: Interpreter, tmp_path: Path) -> None:
    """The allocation in inner() is seen under the lambda, sorted()'s C frames, größe() and the module, each
    Python group in place of the eval loop's native frame, with the lines that ran."""
    script = TARGETS / "frames.py"
    template = str(tmp_path / "capture.%p.lbt")
    proc = subprocess.run(
        [interpreter.python, str(script)], env=preload_env(template), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = find_captures(template)
    capture = read_capture(path)
    assert capture.header.python_stacks and capture.header.python_frames_unavailable == ""
    alloc, sort, module = (marked_line(script, m) for m in ("alloc", "sort", "module"))
    wanted = [("inner", alloc), ("größe.<locals>.<lambda>", sort), ("größe", sort), ("<module>", module)]
    found = []
    for frames in resolve_stacks(capture).values():
        python = [(f.function, f.line) for f in frames if f.kind == "python" and f.file == str(script)]
        if python[:1] == [("inner", alloc)] or python[:2] == [("inner.<locals>.<listcomp>", alloc), ("inner", alloc)]:
            found.append((python, frames))
    assert found, f"no stack from inner() on python{interpreter.version}"
    python, frames = max(found, key=lambda pf: len(pf[0]))
    assert [p for p in python if not p[0].endswith("<listcomp>")] == wanted
    names = [f.function for f in frames]
    assert EVAL_FUNCTION not in names  # every eval-loop frame got its group of Python frames
    # sorted()'s C frames sit between the lambda and the function that called sorted()
    between = names[names.index("größe.<locals>.<lambda>") + 1 : names.index("größe")]
    assert "builtin_sorted" in between and "list_sort_impl" in between


def test_c_extension_leak_names_the_calling_line(interpreter: Interpreter, target_python: Path, tmp_path: Path) -> None:
    script = EXAMPLES / "native_leak" / "app.py"
    out = tmp_path / "run"
    result = leakbench(
        "investigate", "-y", "--playbook", "native", "--python", str(target_python), "--out", str(out), str(script)
    )
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert evidence["stages"]["native"]["status"] == "ok"
    assert "Python frames unavailable" not in evidence["stages"]["native"]["message"]
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(script), marked_line(script, "suspect"))
    assert "leaky_process" in top["native_frames"]
    assert top["visible_to_tracemalloc"] is False


def test_buffer_example_every_stage_ok(heavy_target_python: Path, tmp_path: Path) -> None:
    """The default playbook, every stage (the last, rss-2, is the plain run the verdict reads), with nothing
    of leakbench's (nor psutil) in the target's venv."""
    out = tmp_path / "run"
    result = leakbench(
        "investigate",
        "-y",
        "--python",
        str(heavy_target_python),
        "--out",
        str(out),
        str(EXAMPLES / "buffer_leak/app.py"),
    )
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    assert {k: v["status"] for k, v in evidence["stages"].items()} == dict.fromkeys(
        ("rss", "tracemalloc", "backrefs", "native", "line_profile", "rss-2"), "ok"
    ), evidence["stages"]
    pipeline = EXAMPLES / "buffer_leak" / "data_pipeline.py"
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(pipeline), marked_line(pipeline, "suspect"))
    assert "line_profile" in top["stages"]
    assert evidence["retention"][0]["root"] == "module global data_pipeline.buffer"


def test_pool_workers_leaks_are_the_workers(heavy_target_python: Path, tmp_path: Path) -> None:
    """Workers started afresh by spawn and by forkserver carry the agent (tracemalloc) and the tracker (native):
    each worker's leak is blamed on its line, in its own pid, a child's."""
    script = TARGETS / "pool_leak.py"
    out = tmp_path / "run"
    args = ("investigate", "-y", "--playbook", "native", "--python", str(heavy_target_python), "--out", str(out))
    result = leakbench(*args, str(script))
    assert result.code == 0, result.stderr
    result.evidence()  # read and checked against the contract
    # the tracemalloc stage shares the first run with the rss stage, which knows its processes; native runs
    # on its own (the evidence's processes are those of the run the verdict was judged on)
    native = json.loads((out / "stages" / "native.json").read_text())
    tracemalloc = json.loads((out / "stages" / "tracemalloc.json").read_text())
    rss = json.loads((out / "stages" / "rss.json").read_text())["data"]
    first_run = {int(pid): "main" if int(pid) == rss["main_pid"] else "child" for pid in rss["trends"]}
    runs = {
        "tracemalloc": (tracemalloc, first_run),
        "native": (native, {p["pid"]: p["role"] for p in native["data"]["processes"]}),
    }
    for method in ("spawn", "forkserver"):
        line = marked_line(script, method)
        for stage, (found, roles) in runs.items():
            blamed = [s for s in found["suspects"] if (s["file"], s["line"]) == (str(script), line)]
            assert blamed, f"{method}, {stage}: {found['suspects']}"
            assert roles.get(blamed[0]["pid"]) == "child", (method, stage, blamed[0]["pid"], roles)


@pytest.mark.parametrize("tracer", ["auto", "settrace"])
@pytest.mark.parametrize("function", ["batches", "fetch", "stream"])
def test_suspending_functions_complete_at_return(
    interpreter: Interpreter, target_python: Path, function: str, tracer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator, a coroutine, an async generator: 10 completed calls are 10 returns, not 10 yields or awaits,
    so the line that runs once per call ran 10 times; under sys.monitoring (auto, 3.12+) and sys.settrace."""
    if tracer == "settrace" and interpreter.version == "3.11":
        pytest.skip("3.11 has sys.settrace only: the auto case is that one")
    monkeypatch.setenv("LEAKBENCH_LINE_TRACER", tracer)
    script = ROOT / "tests" / "integration" / "targets" / "lineprofile" / "suspending.py"
    args = ("--function", function, "--repro-calls", "10", "--python", str(target_python))
    result = leakbench("lineprofile", str(script), *args)
    assert result.code == 0, result.stderr
    assert "10 completed call(s)" in result.stdout
    # Line #, Mem usage (value unit), Increment ([◀] value unit), Occurrences, Line Contents
    row = re.compile(r"^\s*(\d+)\s+\S+ \S+\s+(?:◀ )?\S+ \S+\s+(\d+)\s")
    occurrences = {int(m[1]): int(m[2]) for m in map(row.match, result.stdout.splitlines()) if m}
    assert occurrences.get(_once_line(script, function)) == 10, result.stdout


def _once_line(script: Path, function: str) -> int:
    """The `# expect: once` line of `function` in the script."""
    lines = script.read_text().splitlines()
    head = next(
        i
        for i, text in enumerate(lines, 1)
        if text.lstrip().startswith(("def ", "async def ")) and f" {function}(" in text
    )
    return next(i for i, text in enumerate(lines, 1) if i > head and text.rstrip().endswith("# expect: once"))
