"""The fast subset of the torture suite (`make torture` runs all of it): what the program does is the same
with and without leakbench."""

from __future__ import annotations

import pytest

from tests.harmless.harness import PROGRAMS, Program, check

BY_NAME = {p.script: p for p in PROGRAMS}


@pytest.mark.parametrize("attempt", range(3))
def test_tuples_built_from_generators_survive_the_heap_scans(attempt: int) -> None:
    # given a program that builds tuples and frozensets from generators in three threads (gh-127058 shape),
    # when investigated with the quick playbook (tracemalloc and backrefs in the same run)
    found, _ = check(BY_NAME["tuples.py"], "quick")
    # then it exits, prints and writes exactly as it does on its own
    assert found == []


@pytest.mark.parametrize(
    ("script", "playbook"),
    [
        ("hostile.py", "quick"),  # __hash__/__eq__/__repr__/__getattr__/__sizeof__ counted: none called by us
        ("stdin_reader.py", "native"),  # two runs of the target: each reads the whole of stdin
        ("os_exit.py", "quick"),  # os._exit(7): no atexit, the code is the target's own
        ("atexit_handlers.py", "quick"),  # the target's atexit handlers run, then sys.exit(3)
        ("forker.py", "quick"),  # forked workers with their own exit codes
    ],
)
def test_program_runs_as_it_does_on_its_own(script: str, playbook: str) -> None:
    program: Program = BY_NAME[script]
    found, _ = check(program, playbook)
    assert found == []
