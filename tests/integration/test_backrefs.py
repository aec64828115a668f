"""What keeps growing objects alive: the chain from a root, named edge by edge, on real leaky targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, leakbench

pytestmark = pytest.mark.integration

TARGETS = Path(__file__).resolve().parent / "targets"


def _chains(out: Path) -> list[dict[str, object]]:
    import json

    return list(json.loads((out / "stages" / "backrefs.json").read_text())["data"]["chains"])


def test_buffer_example_is_kept_by_the_module_level_buffer(tmp_path: Path) -> None:
    # given the seed-002 request loop, when investigated with the quick playbook
    out = tmp_path / "run"
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(out), str(EXAMPLES / "buffer_leak/app.py"), "600"
    )
    assert result.code == 0, result.stderr
    # then the first retention entry names the module global `buffer` and the arrays it holds
    top = result.evidence()["retention"][0]
    assert top["root"] == "module global data_pipeline.buffer"
    assert top["chain"][:2] == ["module data_pipeline", ".buffer (list)"]
    assert top["chain"][-1].endswith("(numpy.ndarray)")
    assert top["pattern"] == "an unbounded module-level container"
    # counted when the chain was taken, part-way through the run (the latest search that found the root)
    assert top["count_growth"] > 300
    # and the graph was rendered by dot and embedded in the report
    assert top["graph"] and (out / top["graph"]).is_file() and (out / top["graph"]).with_suffix(".svg").is_file()
    report = (out / "report.md").read_text()
    assert "## What keeps the growing objects alive (backrefs)" in report
    assert f"![references to numpy.ndarray]({top['graph']})" in report
    assert "Kept alive by: **module global data_pipeline.buffer**" in report


def test_word_index_is_a_local_of_main_in_the_main_thread(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "str", "--out", str(out), str(EXAMPLES / "word_frequency.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert top["root"] == "local variable word_index of main() in the main thread"
    assert top["chain"][:2] == ["main() frame in the main thread", "(local word_index) (dict)"]
    assert top["chain"][2].startswith("['w") and top["chain"][2].endswith("(list)")
    assert top["pattern"] == "whole objects stored where an id would do"
    assert "kept alive by local variable word_index of main() in the main thread" in result.stdout


def test_listener_left_subscribed_is_traced_to_the_module_level_bus(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "View", "--out", str(out), str(TARGETS / "listener/app.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert top["type"] == "__main__.View"
    assert top["root"] == "module global events.bus"
    assert top["chain"][:3] == ["module events", ".bus (events.EventBus)", ".listeners (list)"]
    assert top["chain"][-2:][1] == ".__self__ (__main__.View)"
    assert top["pattern"] == "a listener/callback registry never unsubscribed"


def test_lru_cache_on_a_method_is_traced_to_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "PriceService", "--out", str(out), str(TARGETS / "lru_method.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert top["root"] == "cache of functools.lru_cache on __main__.PriceService.price"
    assert top["chain"][-1] == "[0] (__main__.PriceService)"
    assert top["pattern"] == "lru_cache on a method holding self"


@pytest.mark.parametrize(
    ("type_name", "root", "second"),
    [
        # held by closures in a module-level list: the list is the root, not the closure's cell
        ("Payload", "module global __main__.ON_SHUTDOWN", ".ON_SHUTDOWN (list)"),
        # held by a module-level object: the module global, not the class whose methods see the namespace
        ("Entry", "module global __main__.SERVICE", ".SERVICE (__main__.Service)"),
    ],
)
def test_the_scripts_own_global_is_the_root(tmp_path: Path, type_name: str, root: str, second: str) -> None:
    # given a script whose globals are reached (once it has ended) only as a function's __globals__
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", type_name, "--out", str(out), str(TARGETS / "script_roots.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    # then the root is the module global that keeps them, worded as one
    assert top["root"] == root
    assert top["chain"][:2] == ["module __main__", second]


def test_cycles_with_gc_disabled_are_uncollected_cycles(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "Node", "--out", str(out), str(TARGETS / "gc_cycles.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert "garbage in reference cycles" in top["root"] and "gc is disabled" in top["root"]
    assert top["chain"][1:] == [
        ".children (list)",
        "[0] (__main__.Node)",
        ".parent (__main__.Node) — back to the first",
    ]
    assert top["pattern"] == "uncollected reference cycles"


def test_leak_held_by_a_thread_is_caught_while_the_thread_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "Record", "--out", str(out), str(TARGETS / "thread_leak.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert top["root"] == "local variable records of collect() in thread 'collector'"
    assert top["chain"][1] == "(local records) (list)"


def test_forked_child_reports_its_own_pid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "Job", "--out", str(out), str(TARGETS / "fork_leak.py"))
    assert result.code == 0, result.stderr
    evidence = result.evidence()
    top = evidence["retention"][0]
    main_pid = next(p["pid"] for p in evidence["processes"] if p["role"] == "main")
    assert top["pid"] != main_pid
    # the worker's own global, named with the worker's pid
    assert top["root"] == f"module global __main__.history in pid {top['pid']}"
    chain = _chains(out)[0]
    assert chain["role"] == "child" and chain["pid"] == top["pid"]


def test_unknown_type_names_the_types_that_grew(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "NoSuchThing", "--out", str(out), str(TARGETS / "gc_cycles.py"))
    assert result.code == 2
    assert "--type NoSuchThing: no object of that type existed in the target" in result.stderr
    assert "types that grew: " in result.stderr and "__main__.Node" in result.stderr


def test_at_takes_the_chains_at_that_moment_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "View", "--at", "1.5", "--out", str(out), str(TARGETS / "listener/app.py"))
    assert result.code == 0, result.stderr
    chain = _chains(out)[0]
    assert 1.5 <= float(str(chain["taken_at"])) < 3.5
    assert result.evidence()["target"]["exit"]["stopped_by"] == "chains taken"
    assert chain["root"] == "module global events.bus"


@pytest.mark.slow  # the mem-leaker example's root is test_examples.py's too
def test_array_replaced_by_a_bigger_one_is_kept_by_its_module_global(tmp_path: Path) -> None:
    # given seed 003: one numpy array in a global, replaced by a bigger one at every call (no type grows in count)
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(out), str(EXAMPLES / "mem_leaker.py"))
    assert result.code == 0, result.stderr
    # then the report says the module global `data` keeps it alive
    top = result.evidence()["retention"][0]
    assert top["type"] == "numpy.ndarray"
    assert top["root"] == "module global __main__.data"
    assert top["chain"] == ["module __main__", ".data (numpy.ndarray)"]
    assert top["pattern"] == "one object that keeps growing in size"
    assert top["bytes_growth"] > 1024 * 1024
    report = (out / "report.md").read_text()
    assert "One object that grew by" in report and "kept alive by **module global" in report


def test_bytearray_grown_in_place_is_kept_by_its_class_attribute(tmp_path: Path) -> None:
    # given one bytearray in a class attribute, extended in place: the same object, only bigger
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(TARGETS / "sizes/class_buffer.py")
    )
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert (top["type"], top["root"]) == ("bytearray", "class attribute __main__.Recorder.journal")
    assert top["chain"] == ["class __main__.Recorder", ".journal (bytearray)"]
    assert "class attribute journal" in top["fix"]


def test_bytes_made_longer_with_plus_equals_is_kept_by_its_module_global(tmp_path: Path) -> None:
    # given `buf += chunk` on a module-level bytes: a new, bigger object at every call; no tracemalloc needed
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "bytes", "--out", str(out), str(TARGETS / "sizes/bytes_global.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert (top["type"], top["root"]) == ("bytes", "module global __main__.buf")
    assert top["chain"] == ["module __main__", ".buf (bytes)"]
    assert "bytes in pid" in result.stdout and "in size" in result.stdout


def test_thread_local_in_a_long_lived_worker_names_the_thread_local(tmp_path: Path) -> None:
    # given a worker thread that keeps every row in a threading.local, investigated end to end
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(TARGETS / "thread_local.py")
    )
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert top["root"] == "thread-local __main__.state.rows"
    assert top["chain"][:2] == ["thread-local __main__.state", ".rows (in one thread) (list)"]
    assert top["chain"][2].endswith("(__main__.Row)")
    assert top["pattern"] == "a thread-local in long-lived threads"


def test_handler_added_per_call_names_the_logger(tmp_path: Path) -> None:
    # given a function that adds a handler to the same logger at every call, investigated end to end
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(TARGETS / "logger_handlers.py")
    )
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    # then the handlers of that logger come first, not logging's own weak references to every handler
    assert top["root"] == "handlers of logger 'orders'"
    assert top["chain"][:2] == ["logger 'orders'", ".handlers (list)"]
    assert top["chain"][2].endswith("(logging.StreamHandler)")
    assert top["pattern"] == "handlers added per call"


def test_one_list_that_gets_longer_is_followed_through_the_growing_containers_watch(tmp_path: Path) -> None:
    # given one module-level list of floats (objects the collector does not track) that only gets longer
    result = leakbench(
        "investigate", "--playbook", "quick", "--out", str(tmp_path / "run"), str(TARGETS / "sizes/float_list.py")
    )
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    assert (top["type"], top["root"]) == ("float", "module global __main__.samples")
    assert top["chain"][:2] == ["module __main__", ".samples (list)"]
    assert top["pattern"] == "an unbounded module-level container"


def test_readme_example_follows_the_list_that_keeps_getting_longer(tmp_path: Path) -> None:
    # the README's example: `leakbench backrefs --type list examples/buffer_leak/app.py`
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "list", "--out", str(out), str(EXAMPLES / "buffer_leak/app.py"))
    assert result.code == 0, result.stderr
    top = result.evidence()["retention"][0]
    # the list that grows is the module-level buffer, not an import's table
    assert (top["type"], top["root"]) == ("list", "module global data_pipeline.buffer")
    assert top["chain"][:2] == ["module data_pipeline", ".buffer (list)"]
    assert "one list got longer by" in " ".join(result.stdout.split())


def test_a_type_that_did_not_grow_is_said_so_with_the_types_that_did(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = leakbench("backrefs", "--type", "Steady", "--out", str(out), str(TARGETS / "steady_and_growing.py"))
    assert result.code == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "Steady did not keep growing" in said and "types that grew:" in said and "Growing" in said
    assert result.evidence()["retention"] == []


def test_strings_kept_in_thread_local_memos_are_traced_to_the_thread_local(tmp_path: Path) -> None:
    # given pool workers that keep strings (which the collector does not track) in a threading.local
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(out), str(TARGETS / "thread_memo.py"))
    assert result.code == 0, result.stderr
    retention = result.evidence()["retention"]
    # then the growth is followed through the per-thread dict that holds them to a named root (the
    # thread-local itself, or the pool whose threads own it)
    assert retention, "no root"
    top = retention[0]
    assert top["root"].startswith(("thread-local __main__.memo", "module global __main__.pool")), top["root"]
    assert any(".cache" in step for step in top["chain"]), top["chain"]


def test_strings_kept_by_an_unbounded_lru_cache_are_traced_to_the_cache(tmp_path: Path) -> None:
    # given an lru_cache(maxsize=None) holding a new string per call (neither tracked by the collector)
    out = tmp_path / "run"
    result = leakbench("investigate", "--playbook", "quick", "--out", str(out), str(TARGETS / "lru_strings.py"))
    assert result.code == 0, result.stderr
    retention = result.evidence()["retention"]
    assert retention, "no root"
    # then the cache that keeps them is the root, unbounded: the pattern is a cache without eviction
    top = retention[0]
    assert top["root"] == "cache of functools.lru_cache on __main__.lookup"
    assert top["bound"] is None and top["pattern"] == "cache without eviction"
