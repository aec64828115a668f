"""How a run ends when leakbench ends it, and what the user sees of it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, leakbench

TARGETS = ROOT / "tests" / "integration" / "targets"


@pytest.mark.integration
def test_a_stop_at_the_duration_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = leakbench(
        "investigate", "--playbook", "quick", "--duration", "3", "--out", str(out), str(TARGETS / "ticks_forever.py")
    )
    assert r.code == 0, r.stderr
    # the user sees that leakbench stopped the target and why, and no traceback from the target
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr
    said = " ".join(r.stderr.split())
    assert "leakbench: stopped the target after" in said and "--duration was reached" in said
    # the target's stdout passed through untouched, on lines of its own
    assert set(r.stdout.split()) == {"tick"}
    # the report says it was stopped by leakbench, not that it crashed
    ex = json.loads((out / "evidence.json").read_text())["target"]["exit"]
    assert ex["status"] == "timeout" and ex["stopped_by"] == "duration" and ex["exception"] is None
    assert "stopped by leakbench (duration)" in (out / "report.md").read_text()


@pytest.mark.integration
def test_an_asyncio_service_stopped_at_the_duration_ends_quietly_without_a_signal(tmp_path: Path) -> None:
    # given a service whose tasks sleep and work until it is stopped, SIGINT left to asyncio.run
    script = tmp_path / "service.py"
    script.write_text(
        "import asyncio\n\nasync def job(i):\n    await asyncio.sleep((i % 17) / 1000)\n    return i\n\n"
        "async def main():\n    while True:\n        await asyncio.gather(*(job(i) for i in range(200)))\n"
        "        print('round', flush=True)\n\nasyncio.run(main())\n"
    )
    out = tmp_path / "run"
    r = leakbench("investigate", "--playbook", "quick", "--duration", "3", "--out", str(out), str(script))
    assert r.code == 0, r.stderr
    # then the agent ended it after its last readings: no signal, nothing from asyncio's teardown on stderr
    ex = json.loads((out / "evidence.json").read_text())["target"]["exit"]
    assert ex["status"] == "timeout" and ex["stopped_by"] == "duration" and ex["signal"] is None
    assert "Traceback" not in r.stderr and "Exception in callback" not in r.stderr, r.stderr
    assert set(r.stdout.split()) <= {"round"}  # its own lines only (how many rounds ran depends on the load)


@pytest.mark.integration
def test_a_pool_stopped_at_the_duration_ends_with_its_workers_and_no_traceback(tmp_path: Path) -> None:
    # given a job whose pool workers are busy when the duration is reached
    script = TARGETS / "verdicts" / "worker_pool.py"
    out = tmp_path / "run"
    r = leakbench("investigate", "--playbook", "quick", "--duration", "4", "--out", str(out), str(script), "60")
    assert r.code == 0, r.stderr
    # then the workers were not left writing into a closed pipe: the pool's own exit ended them (SIGINT)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    ex = json.loads((out / "evidence.json").read_text())["target"]["exit"]
    assert ex["status"] == "timeout" and ex["signal"] == 2
    leftover = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True).stdout.split()
    assert leftover == []


@pytest.mark.integration
def test_a_target_that_ignores_sigint_is_reported_with_the_signal_that_ended_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = leakbench(
        "investigate", "--playbook", "quick", "--duration", "3", "--out", str(out),
        str(TARGETS / "ticks_forever.py"), "ignore-sigint",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    ex = json.loads((out / "evidence.json").read_text())["target"]["exit"]
    assert ex["status"] == "timeout" and ex["signal"] == 15
    assert ex["stopped_by"] == "duration; it ignored SIGINT and was ended by SIGTERM"
    assert "it ignored SIGINT and was ended by SIGTERM" in " ".join(r.stderr.split())


@pytest.mark.integration
def test_the_report_keeps_the_end_of_the_targets_stderr(tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(
        "import sys\nfor i in range(500):\n    print(f'warning {i}', file=sys.stderr)\nraise SystemExit(3)\n"
    )
    out = tmp_path / "run"
    r = leakbench("investigate", "--playbook", "quick", "--out", str(out), str(script))
    assert r.code == 0, r.stderr
    # everything passed through to leakbench's stderr, in order
    assert "warning 0\n" in r.stderr and "warning 499\n" in r.stderr
    tail = json.loads((out / "evidence.json").read_text())["target"]["exit"]["stderr_tail"]
    # the last lines only, next to how it ended
    assert tail.endswith("warning 499\n") and "warning 0\n" not in tail and tail.count("\n") <= 40
    report = (out / "report.md").read_text()
    assert "The last lines it wrote to stderr" in report and "warning 499" in report
