"""The evidence.json contract checker: it accepts real evidence and names every broken key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from leakbench.report.schema import problems

GOLDEN = Path(__file__).parent / "data" / "evidence.json"


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def test_a_real_evidence_file_passes() -> None:
    assert problems(_golden()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["verdict"].pop("kind"), "verdict.kind: missing"),
        (lambda e: e["verdict"].update(kind="maybe"), "verdict.kind: unexpected value 'maybe'"),
        (lambda e: e["verdict"].update(confidence=1.5), "verdict.confidence"),
        (lambda e: e["target"]["exit"].update(status="crashed"), "target.exit.status"),
        (lambda e: e["suspects"][0].update(line="12"), "suspects[0].line"),
        (lambda e: e["suspects"][0].pop("native_frames"), "suspects[0].native_frames: missing"),
        (lambda e: e["retention"][0].update(chain="a -> b"), "retention[0].chain"),
        (lambda e: e["stages"]["rss"].update(status="done"), "stages.rss.status"),
        (lambda e: e.update(schema="leakbench.evidence/0"), "schema: expected"),
        (lambda e: e.pop("processes"), "processes: expected a list"),
    ],
)
def test_each_broken_key_is_named(mutate: Any, expected: str) -> None:
    evidence = copy.deepcopy(_golden())
    mutate(evidence)
    assert any(p.startswith(expected) for p in problems(evidence)), problems(evidence)
