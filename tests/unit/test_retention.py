"""Growth ranking and leak-pattern recognition on recorded chains; graph rendering with and without dot."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.analysis.retention import ChainFacts, Checkpoint, Step, facts_from, rank_growth, recognise
from leakbench.report import graphs
from leakbench.stages.backrefs import _still_growing


def _cp(t: float, modules: int, user: frozenset[str] = frozenset(), **counts: int) -> Checkpoint:
    return Checkpoint(t, {k.replace("__", "."): (n, n * 100) for k, n in counts.items()}, modules, user)


def test_growth_is_ranked_by_bytes_and_import_intervals_do_not_count() -> None:
    series = [
        _cp(0, 10, function=100, dict=50),
        _cp(1, 30, function=2100, dict=450),  # an import: thousands of functions, not a leak
        _cp(2, 30, function=2100, dict=650),
        _cp(3, 30, function=2100, dict=850),
    ]
    rows = rank_growth(series, min_growth=50)
    assert [(g.type, g.count_growth, g.bytes_growth) for g in rows] == [("dict", 400, 40000)]
    assert rows[0].grew_in == 1.0


def test_user_classes_grow_even_while_importing() -> None:
    user = frozenset({"app.Record"})
    series = [_cp(0, 10, user), _cp(1, 20, user, app__Record=300), _cp(2, 20, user, app__Record=600)]
    (row,) = rank_growth(series, min_growth=50)
    assert (row.type, row.count_growth) == ("app.Record", 600)


def test_growth_is_measured_to_the_peak_when_a_thread_freed_it_at_the_end() -> None:
    series = [_cp(0, 5, Rec=0), _cp(1, 5, Rec=500), _cp(2, 5, Rec=900), _cp(3, 5, Rec=0)]
    (row,) = rank_growth(series)
    assert (row.count_growth, row.peak, row.last, row.freed_at_end) == (900, 900, 0, True)


def _facts(kind: str, *steps: tuple[str, str], retained: str = "app.Thing", each: float = 100.0, **info: object):
    return ChainFacts(retained, kind, tuple(Step(e, t) for e, t in steps), each, info)


@pytest.mark.parametrize(
    ("facts", "pattern"),
    [
        (_facts("module-global", (".buffer", "list"), ("[15999]", "numpy.ndarray")),
         "an unbounded module-level container"),
        (_facts("class-attribute", (".registry", "dict"), ("['k']", "app.Thing")), "cache without eviction"),
        (_facts("lru-cache", ("(cache)", "dict"), ("(key)", "tuple"), ("[0]", "app.Service"), first_argument="self"),
         "lru_cache on a method holding self"),
        (_facts("lru-cache", ("(cache)", "dict"), first_argument="key", maxsize=None), "cache without eviction"),
        (_facts("module-global", (".bus", "app.Bus"), (".listeners", "list"), ("[3]", "method"),
                (".__self__", "app.View")),
         "a listener/callback registry never unsubscribed"),
        (_facts("module-global", (".errors", "list"), ("[0]", "ValueError"), (".__traceback__", "traceback")),
         "stored exceptions keeping tracebacks and frames alive"),
        (_facts("thread-local", (".records (in one thread)", "list")), "a thread-local in long-lived threads"),
        (_facts("logger", (".handlers", "list"), ("[9]", "logging.StreamHandler")), "handlers added per call"),
        (_facts("frame-local", ("(local word_index)", "dict"), ("['w1']", "list"), ("[3]", "str"), retained="str",
                each=1100.0), "whole objects stored where an id would do"),
        (_facts("cycle", (".children", "list"), ("[0]", "app.Node"), (".parent", "app.Node"), gc_enabled=False),
         "uncollected reference cycles"),
    ],
)  # fmt: skip
def test_each_chain_names_its_pattern(facts: ChainFacts, pattern: str) -> None:
    finding = recognise(facts)
    assert finding.pattern == pattern
    assert finding.fix


def test_one_object_grown_in_size_names_its_global_in_the_fix() -> None:
    result = {
        "type": "numpy.ndarray",
        "mode": "size",
        "count_growth": 0,
        "bytes_growth": 8_000_000,
        "root": {"kind": "module-global", "words": "module global __main__.data", "module": "__main__"},
        "steps": [{"edge": ".data", "type": "numpy.ndarray", "repr": "array"}],
    }
    facts = facts_from(result)
    assert facts.growth == "size" and facts.steps == (Step(".data", "numpy.ndarray"),)
    finding = recognise(facts)
    assert finding.pattern == "one object that keeps growing in size"
    assert finding.fix.startswith("the module global data keeps one numpy.ndarray")


def test_disabled_collector_is_named_in_the_fix() -> None:
    assert "gc.disable()" in recognise(_facts("cycle", gc_enabled=False)).fix


def test_probe_result_becomes_facts_with_the_container_element_as_last_step() -> None:
    result = {
        "type": "numpy.ndarray",
        "mode": "container",
        "count_growth": 100,
        "bytes_growth": 100_000,
        "root": {"kind": "module-global", "words": "module global m.buffer", "module": "m"},
        "steps": [{"edge": ".buffer", "type": "list", "repr": "list of 100"}],
    }
    facts = facts_from(result)
    assert facts.steps[-1] == Step("[…]", "numpy.ndarray")
    assert facts.bytes_per_object == 1000.0
    assert facts.root_info == {"module": "m"}


DOT = 'digraph g { a [label="module m"]; b [label="list"]; a -> b [label=".buffer"]; }\n'


def test_graph_is_rendered_to_svg_and_png_by_dot(tmp_path: Path) -> None:
    if graphs.find_dot() is None:
        pytest.skip("Graphviz dot is not installed")
    rendered = graphs.render_dot(DOT, tmp_path / "images" / "g")
    assert rendered.problem is None
    assert rendered.svg is not None and rendered.svg.read_text().lstrip().startswith("<?xml")
    assert rendered.png is not None and rendered.png.read_bytes()[:4] == b"\x89PNG"
    assert rendered.image == rendered.png


def test_without_dot_the_source_is_kept_and_the_hint_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graphs.shutil, "which", lambda _name: None)
    rendered = graphs.render_dot(DOT, tmp_path / "g")
    assert rendered.image is None
    assert rendered.dot.read_text() == DOT
    assert rendered.problem is not None
    assert "install Graphviz" in rendered.problem and "apt install graphviz" in rendered.problem


def _global_chain(kind: str, mode: str, name: str, steps: list[dict[str, str]]) -> dict[str, object]:
    """The probe's result for a growing `kind` reached from the module global `name` along `steps`."""
    root = {"kind": "module-global", "words": f"module global {name}"}
    return {"type": kind, "mode": mode, "bytes_growth": 4000, "root": root, "steps": steps}


def test_a_deque_with_a_maxlen_on_the_chain_bounds_the_root() -> None:
    from collections import deque

    from leakbench.agent import backrefs_naming

    # given the agent's own description of a chain through a real deque(maxlen=20) ...
    window: deque[int] = deque(range(5), maxlen=20)
    steps = backrefs_naming.path_steps([{"WINDOW": window}, window])
    assert steps[0]["repr"] == "deque of 5 (maxlen=20)"
    # ... then the analysis reads the bound from it: growth toward it is a plateau, not a leak
    finding = recognise(facts_from(_global_chain("collections.deque", "size", "app.WINDOW", steps)))
    assert (finding.pattern, finding.bound) == ("a bounded cache filling up", 20)


def test_a_cachetools_cache_on_the_chain_bounds_the_root_with_its_maxsize() -> None:
    from leakbench.agent import backrefs_naming

    class Cache(dict):  # stores its bound as cachetools.Cache does, under a mangled private name
        def __init__(self, maxsize: int) -> None:
            super().__init__()
            self.__maxsize = maxsize

        def __getattr__(self, name: str) -> object:
            raise AssertionError("the agent must not run the cache's code")

    Cache.__module__ = "cachetools"
    profiles = Cache(1500)
    steps = backrefs_naming.path_steps([{"PROFILES": profiles}, profiles])
    assert steps[0]["repr"].endswith("(maxsize=1500)")
    assert recognise(facts_from(_global_chain("dict", "container", "app.PROFILES", steps))).bound == 1500


def test_an_lru_cache_root_records_its_maxsize_and_currsize() -> None:
    import functools

    from leakbench.agent import backrefs_naming

    @functools.lru_cache(maxsize=64)
    def render(page: int) -> str:
        return f"page {page}"

    for page in range(10):
        render(page)
    described = backrefs_naming.describe("lru-cache", [render], {}, {}, "instances")
    root = described["root"]
    assert (root["maxsize"], root["currsize"]) == (64, 10)
    result = {"type": "str", "mode": "container", "count_growth": 10, "bytes_growth": 1000, "root": root}
    assert recognise(facts_from(result)).bound == 64


def test_a_type_that_stopped_growing_early_is_not_still_growing() -> None:
    # an index of tuples built in the first half of the run, and a history of dicts that grows to the end
    points = [Checkpoint(float(t), {"tuple": (min(t, 5) * 300_000, 0), "dict": (1000 + 200 * t, 0)}) for t in range(12)]
    assert not _still_growing(points, "tuple")
    assert _still_growing(points, "dict")
    assert _still_growing(points[:3], "tuple")  # too few checkpoints to tell: not held against it
    # a last checkpoint after the target's code returned, when the history a function held is gone
    torn_down = [*points, Checkpoint(12.0, {"tuple": (1_500_000, 0), "dict": (1000, 0)})]
    assert _still_growing(torn_down, "dict") and not _still_growing(torn_down, "tuple")
    # cycles that grow to the end, the checkpoints spaced out by a busy machine (the last two 4 s apart)
    sparse = [(1.2, 4954), (2.7, 12756), (4.0, 19957), (6.1, 28697), (10.2, 46837), (11.6, 49000)]
    assert _still_growing([Checkpoint(t, {"Node": (n, 0)}) for t, n in sparse], "Node")
    # an index counted with a stride: its sampled count rises and falls by chance, then holds, while the
    # history grows to the end (counts as recorded by a run on a busy machine)
    times = [0.87, 2.06, 4.01, 9.6, 11.22, 12.54, 13.99, 20.44, 23.65, 26.02, 27.15, 29.6, 30.79, 32.98, 33.29]
    tuples = [1193, 1217, 1376, 1723, 1694, 1649, 1119, 1312, 1379, 1060, 1060, 1060, 1060, 1061, 1062]
    dicts = [1005, 1040, 1041, 1047, 1048, 1048, 1048, 1047, 1048, 2069, 3045, 4845, 5758, 7047, 7044]
    sampled = [Checkpoint(t, {"tuple": (n, 0), "dict": (d, 0)}) for t, n, d in zip(times, tuples, dicts, strict=True)]
    assert not _still_growing(sampled, "tuple")
    assert _still_growing(sampled, "dict")
