"""What keeps growing objects alive: type growth over checkpoints, and the leak pattern a chain shows.

Pure functions over what the backrefs probe recorded (per-type counts at each checkpoint, and chains from a
root to sampled objects); no I/O, so every rule here is unit-tested on recorded data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

CONTAINER_TYPES = frozenset({"list", "dict", "set", "collections.deque", "collections.OrderedDict"})
LISTENER_WORDS = re.compile(r"listen|callback|subscri|observer|handler|hook|signal|slot|receiver|on_", re.IGNORECASE)
CACHE_WORDS = re.compile(r"cache|memo|registry|seen|lookup", re.IGNORECASE)
BIG_OBJECT_BYTES = 512


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Per-type counts and shallow bytes of the gc-tracked objects at one moment (seconds since start)."""

    t: float
    counts: Mapping[str, tuple[int, int]]
    modules: int = 0  # len(sys.modules): an interval in which it changed was spent importing
    user_types: frozenset[str] = frozenset()  # classes of the program's own code: never import growth


@dataclass(frozen=True, slots=True)
class TypeGrowth:
    type: str
    first: int  # count at the first checkpoint
    last: int  # count at the last checkpoint
    peak: int  # highest count at any checkpoint
    count_growth: int  # the most the count rose above the first checkpoint
    bytes_growth: int  # the same, in shallow bytes (what sys.getsizeof says)
    grew_in: float  # fraction of intervals in which the count rose

    @property
    def freed_at_end(self) -> bool:
        """Grew during the run but was back near the start at the end (a thread or a frame held it)."""
        return self.count_growth > 0 and self.last - self.first < self.count_growth / 2


def rank_growth(series: Sequence[Checkpoint], min_growth: int = 1) -> list[TypeGrowth]:
    """Types ranked by how much they grew (objgraph.growth over the whole series), most bytes first.

    Growth is measured to the highest count reached, not only to the last checkpoint: objects held by a
    thread or a running frame are gone at the end, and that is exactly the case worth seeing. What an
    interval spent importing made (functions, classes, module tables) is not counted as growth.
    """
    if len(series) < 2:
        return []
    importing = [b.modules != a.modules for a, b in pairwise(series)]
    calm = importing.count(False) or 1
    keys = {k for cp in series for k in cp.counts}
    out = []
    for key in keys:
        raw = [cp.counts.get(key, (0, 0)) for cp in series]
        counts, sizes = [raw[0][0]], [raw[0][1]]
        rises = 0
        for (a, b), imported in zip(pairwise(raw), importing, strict=True):
            own = key in series[-1].user_types
            dn, db = (0, 0) if imported and not own else (b[0] - a[0], b[1] - a[1])
            rises += dn > 0
            counts.append(counts[-1] + dn)
            sizes.append(sizes[-1] + db)
        peak = max(range(len(counts)), key=lambda i: counts[i])
        growth = counts[peak] - counts[0]
        if growth < min_growth:
            continue
        out.append(
            TypeGrowth(
                type=key,
                first=raw[0][0],
                last=raw[-1][0],
                peak=raw[peak][0],
                count_growth=growth,
                bytes_growth=max(sizes[peak] - sizes[0], 0),
                grew_in=rises / calm,
            )
        )
    out.sort(key=lambda g: (g.bytes_growth, g.count_growth), reverse=True)
    return out


@dataclass(frozen=True, slots=True)
class Step:
    """One reference in a chain: how the holder refers to the next object (`.name`, `[key]`, `[3]`), and its type."""

    edge: str
    type: str


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the probe found for one growing type: the root, the steps from it, and what each object costs."""

    retained_type: str
    root_kind: str  # module-global, class-attribute, frame-local, lru-cache, thread-local, logger, closure,
    # gc-garbage, cycle, native, deep
    steps: tuple[Step, ...] = ()
    bytes_per_object: float = 0.0
    root_info: Mapping[str, Any] = field(default_factory=dict)
    growth: str = "count"  # count (more objects), container (a container holds more), size (one object grew)
    step_reprs: tuple[str, ...] = ()  # the probe's short description of each step's object


@dataclass(frozen=True, slots=True)
class Finding:
    pattern: str
    fix: str
    bound: int | None = None  # the root holds at most this many entries: growth toward it is a plateau


_MAXLEN = re.compile(r"maxlen=(\d+)")
_MAXSIZE = re.compile(r"maxsize=(\d+)")
BOUNDED_TYPES = ("cachetools.",)  # caches that evict by construction


def bound_of(facts: ChainFacts) -> int | None:
    """How many entries the root can hold, when the chain shows a bound: an lru_cache with a maxsize, a
    deque with a maxlen, a cachetools cache (its maxsize when the probe's description shows it)."""
    if facts.root_kind == "lru-cache":
        maxsize = facts.root_info.get("maxsize")
        return int(maxsize) if isinstance(maxsize, int) and not isinstance(maxsize, bool) and maxsize > 0 else None
    for step, text in zip(facts.steps, [*facts.step_reprs, *([""] * len(facts.steps))], strict=False):
        if step.type == "collections.deque":
            found = _MAXLEN.search(text)
            if found:
                return int(found.group(1))
        if step.type.startswith(BOUNDED_TYPES):
            found = _MAXSIZE.search(text)
            return int(found.group(1)) if found else 0
    return None


def facts_from(result: Mapping[str, Any]) -> ChainFacts:
    """The probe's JSON result for one type, as ChainFacts."""
    count = max(int(result.get("count_growth", 0)), 1)
    steps = tuple(Step(str(s.get("edge", "")), str(s.get("type", ""))) for s in result.get("steps", []))
    if result.get("mode") == "container":
        steps += (Step("[…]", str(result.get("type", ""))),)
    root = result.get("root", {})
    return ChainFacts(
        retained_type=str(result.get("type", "")),
        root_kind=str(root.get("kind", "")),
        steps=steps,
        bytes_per_object=float(result.get("bytes_growth", 0)) / count,
        root_info={k: v for k, v in root.items() if k not in ("kind", "words")},
        growth=str(result.get("mode") if result.get("mode") in ("container", "size") else "count"),
        step_reprs=tuple(str(s.get("repr", "")) for s in result.get("steps", [])),
    )


def _is_user_type(name: str) -> bool:
    return "." in name and not name.startswith(("builtins.", "collections.", "weakref.", "functools.", "logging."))


def recognise(facts: ChainFacts) -> Finding:
    """The leak pattern a chain shows and the usual fix; the first rule that matches wins."""
    kinds = [s.type for s in facts.steps]
    edges = " ".join(s.edge for s in facts.steps)
    kind = facts.root_kind
    if kind in ("cycle", "gc-garbage"):
        if facts.root_info.get("in_gc_garbage") or kind == "gc-garbage":
            fix = (
                "these cycles are in gc.garbage: the collector could not free them; break the cycle "
                "(weakref for the back-reference) and empty gc.garbage"
            )
        elif facts.root_info.get("gc_enabled") is False:
            fix = (
                "the program disables the collector (gc.disable()): re-enable it, call gc.collect() "
                "periodically, or break the cycles with weakref / explicit cleanup"
            )
        else:
            fix = "break the cycle (a weakref for the back-reference, or clear it when done) or call gc.collect()"
        return Finding("uncollected reference cycles", fix)
    bound = bound_of(facts)
    if bound is not None:
        return Finding(
            "a bounded cache filling up",
            f"the cache holds at most {bound:,} entries: it grows until it is full and then stays the same "
            "size, which is not a leak; lower the bound if the plateau is too high"
            if bound
            else "the cache evicts by construction: it grows until it is full and then stays the same size",
            bound=bound,
        )
    if kind == "lru-cache":
        first = facts.root_info.get("first_argument")
        if first in ("self", "cls"):
            return Finding(
                "lru_cache on a method holding self",
                "functools.lru_cache on a method keeps every instance it was called on alive (self is part of "
                "the key); cache on a module-level function of the fields it needs, or per instance "
                "(functools.cached_property / a dict on self), or bound it with maxsize",
            )
        return Finding(
            "cache without eviction",
            "the lru_cache has no maxsize: give it one (functools.lru_cache(maxsize=1024)) "
            "or clear it with cache_clear() when the data goes stale",
        )
    if kind == "logger":
        return Finding(
            "handlers added per call",
            "a logging handler is added on every call (logger.addHandler in a function that runs repeatedly); "
            "configure handlers once at start-up, or check logger.handlers / removeHandler when done",
        )
    if kind == "thread-local":
        return Finding(
            "a thread-local in long-lived threads",
            "data stored in a threading.local lives as long as the thread (forever in a pool): clear it at the "
            "end of each task, or pass the data explicitly instead",
        )
    if any(t in ("traceback", "frame") for t in kinds) or "__traceback__" in edges:
        return Finding(
            "stored exceptions keeping tracebacks and frames alive",
            "a stored exception keeps its traceback, every frame in it and all their local variables alive: "
            "store str(exc) or traceback.format_exception(exc) instead, or set exc.__traceback__ = None",
        )
    if "method" in kinds or LISTENER_WORDS.search(edges):
        return Finding(
            "a listener/callback registry never unsubscribed",
            "callbacks are registered and never removed, and each bound method keeps its object alive: "
            "unsubscribe when the object is done (a context manager or close()), or store weakref.WeakMethod "
            "/ use a WeakSet for the listeners",
        )
    if kind in ("native", "deep"):
        return Finding(
            "referenced from native code" if kind == "native" else "a chain deeper than the search",
            "no Python root was found within reach; look at the C extension or the allocation sites instead"
            if kind == "native"
            else "raise --max-depth to find the root",
        )
    if kind == "closure":
        return Finding(
            "a container in a closure cell",
            "the function's closure keeps a container that only grows: bound it, clear it, or make it a "
            "parameter with a lifetime",
        )
    if facts.growth == "size":
        name = facts.steps[0].edge.lstrip(".") if facts.steps else ""
        holder = {
            "module-global": f"the module global {name}",
            "class-attribute": f"the class attribute {name}",
            "frame-local": f"the local variable {facts.root_info.get('variable', '')}",
        }.get(kind, "a long-lived reference")
        return Finding(
            "one object that keeps growing in size",
            f"{holder} keeps one {facts.retained_type} that is replaced by a bigger one (or extended in place) "
            "on every call and never shrinks: keep a bounded window (collections.deque(maxlen=...), a fixed-size "
            "array used as a ring buffer), or write out what it holds and reset it",
        )
    # An index of whole objects: dict → list/set → a user object that owns more than an id would.
    if (
        (_is_user_type(facts.retained_type) or facts.retained_type in ("str", "bytes", "bytearray"))
        and facts.bytes_per_object >= BIG_OBJECT_BYTES
        and len(kinds) >= 2
        and kinds[-2] in CONTAINER_TYPES
        and any(k in ("dict", "collections.defaultdict") for k in kinds[:-2])
    ):
        return Finding(
            "whole objects stored where an id would do",
            "the index stores whole objects (with all the data they own) where a key would do: store an id, "
            "a title or a weakref in the index and keep the objects in one place (or not at all)",
        )
    container = next((s for s in facts.steps if s.type in CONTAINER_TYPES), None)
    if kind in ("module-global", "class-attribute") and container is not None:
        where = "module-level" if kind == "module-global" else "class-level"
        if container.type == "dict" and CACHE_WORDS.search(edges):
            return Finding(
                "cache without eviction",
                f"a {where} dict used as a cache only grows: bound it (functools.lru_cache(maxsize=...), "
                "an LRU dict) or expire its entries",
            )
        return Finding(
            f"an unbounded {where} container",
            f"the {where} {container.type} only grows: bound it (collections.deque(maxlen=...)) "
            "or clear it once its contents are used (e.g. after each flush)",
        )
    if kind == "frame-local" and container is not None:
        return Finding(
            "a container that grows in a long-running function",
            "a local container of a function that runs for the whole program only grows: bound it, flush it, "
            "or store smaller records in it",
        )
    return Finding("objects kept alive by a root", "remove the reference from the root once the object is done")


def chain_text(chain: Sequence[str]) -> str:
    return " → ".join(chain)
