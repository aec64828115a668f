"""The verdict in the situations that fooled it: a bounded cache still filling under tracemalloc, growth in
pool workers, per-thread memos, a line that is mostly a C buffer, and a target that fails at once.

Each program is ours (tests/integration/targets/verdicts/), run by the real `leakbench investigate` with the
stages the verdict reads (RSS, tracemalloc and backrefs in one run, the native tracker in another).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import leakbench, marked_line

pytestmark = [pytest.mark.integration, pytest.mark.native]

TARGETS = Path(__file__).parent / "targets" / "verdicts"
PLAYBOOK = TARGETS / "judged.toml"


def _investigate(tmp_path: Path, script: str, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", str(PLAYBOOK), "--out", str(out), str(TARGETS / script), *args)
    assert result.code == 0, result.stderr
    first = (out / "report.md").read_text().split("\n\n")[1]
    return result.evidence(), first


def _top3(evidence: dict[str, Any]) -> list[tuple[str, int]]:
    return [(s["file"], s["line"]) for s in evidence["suspects"][:3]]


def test_a_bounded_lru_cache_still_filling_under_tracemalloc_is_no_leak(tmp_path: Path) -> None:
    evidence, first = _investigate(tmp_path, "bounded_lru.py", "12")
    verdict = evidence["verdict"]
    assert verdict["kind"] == "no-leak", verdict
    assert verdict["pattern"] == "plateau"
    assert first.startswith("**NO-LEAK**")
    # the shape was read on the native tracker's run, and the report says so
    assert "native tracker" in (verdict["judged_on"] or "")
    assert "native tracker" in verdict["sources"]["trend, plateau and rate"]


@pytest.mark.slow  # tests/versions' pool workers test blames a worker in make test
def test_growth_in_pool_workers_is_attributed_to_a_worker(tmp_path: Path) -> None:
    evidence, first = _investigate(tmp_path, "worker_pool.py", "12")
    assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
    path = TARGETS / "worker_pool.py"
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(path), marked_line(path, "suspect"))
    assert top["role"] == "child"
    # the worker received the articles (multiprocessing unpickled them): its line stores them in the root
    assert "multiprocessing" in top["keeps"] and top["stages"][0] == "backrefs"
    assert "worker process" in first
    # the workers' module-level list, in a worker's pid, not the main process's transient list
    root = evidence["retention"][0]
    assert "SEEN_ARTICLES" in root["root"] and root["role"] == "child"
    assert f"SEEN_ARTICLES in pid {root['pid']} (a worker)." in first.replace("\\", "")
    assert any(
        r.startswith(f"{path}:{marked_line(path, 'suspect')} stores what ") for r in evidence["verdict"]["reasons"]
    )
    assert evidence["target"]["exit"]["stopped_by"] != "conclusive"


def test_per_thread_memos_are_a_leak_at_their_line(tmp_path: Path) -> None:
    evidence, first = _investigate(tmp_path, "thread_local_memo.py", "10")
    assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
    path = TARGETS / "thread_local_memo.py"
    assert (str(path), marked_line(path, "suspect")) in _top3(evidence)
    assert first.startswith("**LEAK**")


def test_a_line_that_is_mostly_a_c_buffer_is_not_visible_to_tracemalloc(tmp_path: Path) -> None:
    evidence, _first = _investigate(tmp_path, "mixed_line.py", "10")
    assert evidence["verdict"]["kind"] == "leak", evidence["verdict"]
    path = TARGETS / "mixed_line.py"
    top = evidence["suspects"][0]
    assert (top["file"], top["line"]) == (str(path), marked_line(path, "suspect"))
    assert set(top["stages"]) >= {"tracemalloc", "native"}
    assert top["visible_to_tracemalloc"] is False
    assert top["native_bytes"] > 20 * top["tracemalloc_bytes"]
    assert any("is C-level (not seen by tracemalloc)" in r for r in evidence["verdict"]["reasons"])


def test_a_target_that_fails_at_start_is_the_headline(tmp_path: Path) -> None:
    evidence, first = _investigate(tmp_path, "fails_at_start.py")
    verdict = evidence["verdict"]
    assert verdict["kind"] == "inconclusive"
    assert "JSONDecodeError" in verdict["summary"] and "too short" not in verdict["summary"]
    assert first.startswith("**INCONCLUSIVE**") and "The target raised JSONDecodeError" in first
    assert all(s["status"] != "ok" for s in evidence["stages"].values()), evidence["stages"]


def test_a_module_that_does_not_exist_is_refused_up_front(tmp_path: Path) -> None:
    result = leakbench("investigate", "--out", str(tmp_path / "run"), "-m", "no_such_module_for_leakbench")
    assert result.code == 2
    assert "no module named no_such_module_for_leakbench" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
