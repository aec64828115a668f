"""A few programs of the accuracy corpus (accuracy/), one run each, held to the bar `make accuracy` holds
the whole corpus to: a program that does not leak is `no-leak`; a leak is `leak` with its marked line among
the top three suspects and its root named in retention[0]."""

from __future__ import annotations

from pathlib import Path

import pytest

from accuracy.corpus import synthetic_programs
from accuracy.runner import Outcome, investigate

pytestmark = [pytest.mark.integration, pytest.mark.native]

# a bounded deque window, a module-global dict, a class-attribute registry, and a module-global list of
# dicts (a common type: the sample must come from what the list holds); a bounded lru_cache is
# tests/integration/test_verdicts.py's
FAST = (
    "no_leak/deque_metrics_window",
    "leak/module_global_list",
    pytest.param("leak/module_global_dict", marks=pytest.mark.slow),
    pytest.param("leak/class_attribute_registry", marks=pytest.mark.slow),
)


@pytest.mark.parametrize("name", FAST)
def test_accuracy_program_meets_the_bar(tmp_path: Path, name: str) -> None:
    program = next(p for p in synthetic_programs() if p.name == name)
    run = investigate(program, tmp_path / "run", None)
    assert run.verdict != "error", run.summary
    outcome = Outcome(program, [run])
    expected_lines = [f"{path.name}:{line}" for path, line in program.lines]
    assert outcome.passed, (
        f"{name}: expected {program.expected}, got {run.verdict} ({run.pattern}): {run.summary}\n"
        f"top suspects {run.suspects} (want one of {expected_lines}); "
        f"root {run.root!r} (want one of {list(program.roots)})"
    )


def test_every_corpus_program_declares_its_answer() -> None:
    programs = synthetic_programs()
    leaks = [p for p in programs if p.expected == "leak"]
    assert len(leaks) >= 20 and len(programs) - len(leaks) >= 15
    for p in leaks:
        assert p.lines, p.name
