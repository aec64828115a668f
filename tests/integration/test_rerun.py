"""A stage re-run from a guided run replaces that stage's run in the evidence entirely."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.investigation import Pause, investigate, prepare_run_dir
from leakbench.playbook import load as load_playbook
from leakbench.stages.base import RunOptions
from leakbench.target import make_target
from tests.conftest import ROOT

TARGET = ROOT / "tests" / "integration" / "targets" / "echo_world.py"


def _evidence(run_dir: Path, answers: list[str]) -> dict:
    def stepper(pause: Pause) -> str:
        return answers.pop(0) if answers else "continue"

    spec = make_target(str(TARGET), [], module=False, python=None, memory_limit=None)
    outcome = investigate(spec, load_playbook("native"), prepare_run_dir(run_dir), RunOptions(), None, stepper)
    return outcome.evidence


def _shape(evidence: dict) -> dict:
    return {
        "exit": evidence["target"]["exit"],
        "processes": sorted(p["role"] for p in evidence["processes"]),
        "stages": {name: s["status"] for name, s in evidence["stages"].items()},
    }


@pytest.mark.integration
def test_a_rerun_stage_replaces_its_run(tmp_path: Path) -> None:
    # given the same program investigated once straight through, and once with the first group re-run
    clean = _evidence(tmp_path / "clean", [])
    rerun = _evidence(tmp_path / "rerun", ["rerun"])
    # then the report of the re-run investigation has the shape of the clean one: one run per group,
    # the same ending, the same processes and stage statuses
    assert _shape(rerun) == _shape(clean)
    assert len(list((tmp_path / "rerun" / "runs").iterdir())) == len(list((tmp_path / "clean" / "runs").iterdir()))
    assert (tmp_path / "rerun" / "discarded").is_dir()
