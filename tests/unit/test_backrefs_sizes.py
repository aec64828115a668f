"""The size watch of the backrefs probe, in this process: objects that grow in size and the path to their root.

The probe's modules are loaded by path under private names, as the agent loads them in a target.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any

import pytest

import leakbench.agent

AGENT_DIR = Path(leakbench.agent.__file__).resolve().parent
LIBRARY = tuple(
    p.rstrip(os.sep) + os.sep
    for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    if p
)


def _load(name: str) -> Any:
    module_name = "_leakbench_" + name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, AGENT_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


class FakeAgent:
    launch_file = ""

    def is_own_file(self, filename: str) -> bool:
        return filename.startswith(str(AGENT_DIR) + os.sep)


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module of the program's own, with one global instance whose attribute holds bytes."""
    module = types.ModuleType("shop")
    module.__file__ = str(tmp_path / "shop.py")
    store_type = type("Store", (), {"__module__": "shop"})
    module.Store = store_type  # type: ignore[attr-defined]
    module.store = store_type()  # type: ignore[attr-defined]
    module.store.log = b""  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop", module)
    return module


def test_an_attribute_replaced_by_bigger_bytes_is_named_from_its_module_global(shop: types.ModuleType) -> None:
    sizes, naming, chains = _load("backrefs_sizes"), _load("backrefs_naming"), _load("backrefs_chains")
    watch = sizes.SizeWatch(FakeAgent(), LIBRARY, 0.0, _load("backrefs_naming"))
    # given `store.log += chunk` between checkpoints: a new, bigger bytes object each time
    for _ in range(4):
        shop.store.log += b"x" * 100_000
        watch.observe(set())
    # when the watch is asked what grew
    (key, objects, grown, how, path), *_ = watch.grown([], naming.newest_elements, set(), naming.type_key)
    assert (key, how, len(objects)) == ("bytes", "size", 1)
    assert grown == 300_000
    # then, even after the program replaced the object once more, the chain names the slot it lives in
    shop.store.log += b"y"
    search = chains.ChainSearch(FakeAgent(), LIBRARY, 12, naming, lambda objects, tuples: [])
    result = search.along(path, {"locals": {}, "dicts": set()}, "size")
    assert result["root"]["words"] == "module global shop.store"
    assert result["chain"] == ["module shop", ".store (shop.Store)", ".log (bytes)"]
    assert "digraph backrefs" in result["dot"]


def test_a_value_that_stays_the_same_size_is_not_growth(shop: types.ModuleType) -> None:
    sizes, naming = _load("backrefs_sizes"), _load("backrefs_naming")
    watch = sizes.SizeWatch(FakeAgent(), LIBRARY, 0.0, _load("backrefs_naming"))
    for n in range(4):
        shop.store.log = bytes([n]) * 500_000  # replaced every time, never bigger
        watch.observe(set())
    assert watch.grown([], naming.newest_elements, set(), naming.type_key) == []


def test_sizes_computed_by_python_code_of_the_target_are_never_asked_for() -> None:
    sizes = _load("backrefs_sizes")
    calls = []

    class Lazy:
        def __sizeof__(self) -> int:
            calls.append(1)
            return 1

    assert sizes.c_size(Lazy()) is None and calls == []
    assert sizes.c_size(bytearray(1000)) >= 1000


def test_a_local_read_by_a_closure_is_named_after_the_function_that_owns_it() -> None:
    import threading

    chains, naming = _load("backrefs_chains"), _load("backrefs_naming")
    ready, release = threading.Event(), threading.Event()
    seen: dict[str, list[int]] = {}

    def owner() -> int:
        history = [1, 2, 3]
        seen["history"] = history

        def reader() -> int:  # the closure's frame sees `history` as a free variable
            ready.set()
            release.wait(10)
            return len(history)

        return reader()

    worker = threading.Thread(target=owner, name="owner")
    worker.start()
    try:
        assert ready.wait(10)
        search = chains.ChainSearch(FakeAgent(), LIBRARY, 12, naming, lambda objects, tuples: [])
        name, function, thread, *_ = search.running_frames()["locals"][id(seen["history"])]
        assert (name, function, thread) == ("history", "owner", "thread 'owner'")
    finally:
        release.set()
        worker.join()
