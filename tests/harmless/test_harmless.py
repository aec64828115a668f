"""The fast subset of the torture suite (`make torture` runs all of it, each program under every playbook
several times): what the program does is the same with and without leakbench. One case per way a program
can end (a plain exit, os._exit, forked workers' own exit codes, stdin read twice) and the half-built tuples;
the hostile classes and atexit handlers run in `make torture`."""

from __future__ import annotations

import pytest

from tests.harmless.harness import PROGRAMS, Program, check

BY_NAME = {p.script: p for p in PROGRAMS}


def test_tuples_built_from_generators_survive_the_heap_scans() -> None:
    # given a program that builds tuples and frozensets from generators in three threads (gh-127058 shape),
    # when investigated with the quick playbook (tracemalloc and backrefs in the same run)
    found, _ = check(BY_NAME["tuples.py"], "quick")
    # then it exits, prints and writes exactly as it does on its own
    assert found == []


@pytest.mark.parametrize(
    ("script", "playbook"),
    [
        ("stdin_reader.py", "native"),  # two runs of the target: each reads the whole of stdin
        ("os_exit.py", "quick"),  # os._exit(7): no atexit, the code is the target's own
        ("forker.py", "quick"),  # forked workers with their own exit codes
    ],
)
def test_program_runs_as_it_does_on_its_own(script: str, playbook: str) -> None:
    program: Program = BY_NAME[script]
    found, _ = check(program, playbook)
    assert found == []
