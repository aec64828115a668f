"""Probe: which gc-tracked types grow in count, and the reference chain from a root to a sample of them.

At its own interval (and when the target ends or is stopped) it counts the objects the collector tracks,
per type, without collecting first: garbage left by a disabled or starved collector is evidence too. It
also watches the builtin containers that keep growing, which is how objects the collector does not track
(numpy arrays, strings, bytes) show up; a dict that holds only such objects is not tracked either, and is
found among what dicts and lru_caches refer to. For the types that grow it samples objects (from the
growing containers when they hold most of a type's growth, else among those made during the run) and
walks `gc.get_referrers` upwards, one pass over the heap per level, until it meets a root: a module global,
a class attribute, a local variable of a running frame, an lru_cache, a thread-local, a logger, a closure
cell. The chains and a Graphviz source of the neighbourhood are written as artifacts; the launcher renders.
Memory that grows in size rather than in count (one array replaced by a bigger one, a buffer extended in
place) is found by backrefs_sizes.py, and its objects are followed to their root by the same search.

This file counts and chooses what to follow; the search is in backrefs_chains.py, the naming of edges,
roots and the graph in backrefs_naming.py.

Chains are taken while the target runs, not only at its end: leaks held by a thread or a worker process
are gone once it ends. Stdlib only; the agent's own objects, frames and this search's own containers are
never part of a chain.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import operator
import os
import sys
import sysconfig
import time
import weakref
from array import array
from bisect import bisect_left
from functools import partial
from itertools import chain, compress, filterfalse, islice, repeat
from operator import le, methodcaller

try:
    from _collections import _count_elements  # C: counts the ints below without a Python-level loop
except ImportError:  # pragma: no cover - a Python without the C helper

    def _count_elements(mapping, iterable):
        for e in iterable:
            mapping[e] = mapping.get(e, 0) + 1


try:
    from _functools import _lru_cache_wrapper as LRU_WRAPPER
except ImportError:  # pragma: no cover - a Python without the C lru_cache
    LRU_WRAPPER = None

CONTAINERS = (list, dict, set)
CONTAINER_IDS = frozenset(map(id, CONTAINERS))
CONTAINER_SET = frozenset(CONTAINERS)
LRU_SET = frozenset((LRU_WRAPPER,) if LRU_WRAPPER is not None else ())
# a dict longer than this is not looked into for untracked ones: its referents would be listed whole
MAX_REFERENTS_LISTED = 100000
REFERENTS_CHUNK = 4096  # dicts whose referents are listed by one call (one list per call, not per dict)
DICTS = frozenset((dict,))
PAUSE_TARGET_S = 0.1  # counting samples every n-th object when counting them all would pause longer
MAX_STRIDE = 16  # past this, making the heap's list costs more than counting what is sampled ...
MAX_STRIDE_TRACED = 256  # ... unless tracemalloc traces the count's ints: each costs a traceback, 50 times more
MIN_CONTAINER_LEN = 64
# Growing containers looked into per checkpoint (the most grown first), and elements sized in each: a dict
# of a thousand growing lists would otherwise cost seconds of the agent's time, during which the program
# runs on (and may end, letting go of what the search is about to follow).
MAX_GROWING_EXAMINED = 64
SIZE_SAMPLE = 8
CHASE_BUDGET_S = 0.5  # the longest a search for roots may pause the target while it runs (doubled after
# each search that ran out of it, up to MAX_CHASE_BUDGET_S; searches are spaced by what they cost) ...
MAX_CHASE_BUDGET_S = 4.0
FINAL_CHASE_BUDGET_S = 3.0  # ... and when it has ended or is being stopped
COST_SHARE = 5  # checkpoints and searches are spaced so that they take at most a fifth of the run
_CALL = methodcaller("__call__")


def heap():
    """gc.get_objects() as an iterator: the list exists only while C code consumes it.

    Counting runs while the target's threads run, so it is one chain of C iterators (map, islice) into a C
    consumer (_count_elements): no Python code runs while the list exists, no reference outlives the
    consumer, and nothing is hashed but the objects' types (see types_hash_safely) or their ids.
    """
    return chain.from_iterable(map(_CALL, (gc.get_objects,)))


def types_hash_safely():
    """True when no metaclass in the process defines __hash__ or __eq__: then hashing a class (a dict keyed
    by type(obj)) runs only CPython's own code and needs no allocation. Otherwise types are keyed by id."""
    todo = list(type.__subclasses__(type))
    seen = set()
    while todo:
        meta = todo.pop()
        if id(meta) in seen:
            continue
        seen.add(id(meta))
        for klass in _naming.type_mro(meta):
            if klass is type:
                break
            own = _naming.class_dict(klass)
            if "__hash__" in own or "__eq__" in own:
                return False
        todo.extend(type.__subclasses__(meta))
    return True


def count_types(stride=1, by_type=True):
    """{type (or its id): objects} over the heap, every `stride`-th object only (counts are not scaled)."""
    counts = {}
    objects = heap() if stride == 1 else islice(heap(), 0, None, stride)
    _count_elements(counts, map(type, objects) if by_type else map(id, map(type, objects)))
    return counts


# The helpers below pair each object of a list that exists only while C code runs with what is computed
# from it (its type, id, size or length), or select the objects whose type or id is among some ids. The
# list (the heap from gc.get_objects, or the referrers of a few objects) is made inside the pipeline and
# read by two iterators of its own; everything that could hold it is made before it and let go of it once
# exhausted, and no container that takes part is made before the list (it would be listed, and would keep
# the list alive in a cycle). Half-built tuples (CPython builds a tuple from a generator in place and
# refuses to resize one anything else refers to) are never selected unless the caller is inside the agent's
# fence: an object only C code refers to is never a referent of anything else, but it is on the heap and
# among the referrers of what it holds.
_APPLY = getattr(operator, "call", None)  # Python 3.11+; without it, only the fence makes a search safe
NOT_TUPLE = partial(operator.is_not, tuple)


def _streams(make, layers):
    """Two iterators over make()'s list, each passed through its functions layer by layer."""
    lists = chain.from_iterable(map(repeat, map(_CALL, (make,)), (2,)))
    stream = map(iter, lists)
    for first, second in layers:
        # the third function is never called: asking for it runs `stream` to its end, letting the list go
        stream = map(_APPLY, (first, second, None), stream)
    return stream


def select(make, funcs):
    """The objects o of make() for which funcs[-1](...funcs[0](o)) is true, e.g. (type, id, ids.__contains__)."""
    stream = _streams(make, [(iter, partial(map, fn)) for fn in funcs])
    return chain.from_iterable(map(compress, stream, stream))


def pairs(make, first, second):
    """(first(o), second(o)) for the objects o of make(); each of `first`, `second` is a tuple of functions
    applied in turn (an empty one gives the object itself)."""
    layers = []
    for i in range(max(len(first), len(second))):
        f = partial(map, first[i]) if i < len(first) else iter
        g = partial(map, second[i]) if i < len(second) else iter
        layers.append((f, g))
    stream = _streams(make, layers)
    return chain.from_iterable(map(zip, stream, stream))


def type_ids(by_type):
    """How a type is keyed: the type itself when classes hash safely, else its id."""
    return (type,) if by_type else (type, id)


def type_map():
    """{id(type): type} over the heap: only types are kept, never instances."""
    return dict(pairs(gc.get_objects, (type, id), (type,)))


def containers(by_type=True):
    """The builtin lists, dicts and sets on the heap (never half-built: no resize refuses a shared one),
    then the dicts the collector does not track that dicts or an lru_cache refer to (only when classes hash
    safely: see untracked_containers)."""
    if not by_type:
        return list(select(gc.get_objects, (type, id, CONTAINER_IDS.__contains__)))
    held = list(select(gc.get_objects, (type, CONTAINER_SET.__contains__)))
    held.extend(untracked_containers(held))
    return held


def untracked_containers(held):
    """The dicts that `held` dicts (up to MAX_REFERENTS_LISTED long) and the lru_caches they hold refer to
    and the collector does not track: a dict that holds only strings, numbers or bytes is never tracked
    (nor listed by gc.get_objects), so a memo of strings in a module global, a class attribute, an
    lru_cache or a thread-local's per-thread dict grows unseen otherwise. Each once.

    Only dicts are looked into (lists and sets are always tracked, and a growing dict of strings is held by
    a namespace, a cache or another dict far more often than by a list), and an lru_cache is found in the
    namespace that holds it: on a heap of millions of small lists this costs one pass over the list of
    containers. Every referent passes through C iterators that allocate nothing per referent (an id() is an
    int object, which tracemalloc traces): types are compared by hashing, so the caller makes this pass only
    when classes hash safely.
    """
    dicts = list(compress(held, map(DICTS.__contains__, map(type, held))))
    small = list(compress(dicts, map(le, map(len, dicts), repeat(MAX_REFERENTS_LISTED))))
    dicts.clear()
    found = []
    caches = []
    for i in range(0, len(small), REFERENTS_CHUNK):
        refs = gc.get_referents(*small[i : i + REFERENTS_CHUNK])
        found.extend(filterfalse(gc.is_tracked, compress(refs, map(DICTS.__contains__, map(type, refs)))))
        caches.extend(compress(refs, map(LRU_SET.__contains__, map(type, refs))))
        refs.clear()
    small.clear()
    if caches:
        refs = gc.get_referents(*caches)
        found.extend(filterfalse(gc.is_tracked, compress(refs, map(DICTS.__contains__, map(type, refs)))))
        refs.clear()
        caches.clear()
    unique = dict(zip(map(id, found), found))  # noqa: B905 (guest code for Python 3.8+)
    found.clear()
    return list(unique.values())


def container_lengths(held):
    """{id: len} of the containers with at least MIN_CONTAINER_LEN entries, and those containers.

    Only those few are looked at further: an id (an int) made per container of the heap is an allocation,
    and under tracemalloc each of the agent's allocations costs a traceback of its own stack (15 s for a
    look at a million and a half small lists).
    """
    big = list(compress(held, map(le, repeat(MIN_CONTAINER_LEN), map(len, held))))
    lengths = dict(zip(map(id, big), map(len, big)))  # noqa: B905 (guest code for Python 3.8+)
    return lengths, big


def of_types(tids, tuples=False):
    """The objects on the heap whose type's id is in `tids` (tuples only inside the fence): for when classes
    do not hash safely (of_classes otherwise; by id, the pass makes an int per object on the heap, which
    tracemalloc traces with a traceback of the agent's own stack)."""
    if not tuples:
        tids = frozenset(t for t in tids if t != id(tuple))
    return list(select(gc.get_objects, (type, id, frozenset(tids).__contains__)))


def of_classes(classes, tuples=False):
    """The objects on the heap of the given types, compared by hashing the types (only when classes hash
    safely): nothing is allocated per object, where an id() is an int that tracemalloc traces with its
    traceback, which made gathering a few hundred thousand candidates cost the whole search budget."""
    wanted = frozenset(c for c in classes if tuples or c is not tuple)
    return list(select(gc.get_objects, (type, wanted.__contains__)))


def referrers(objects, tuples=False):
    """gc.get_referrers(*objects); without tuples (a half-built one is among them) outside the fence."""
    if tuples:
        return gc.get_referrers(*objects)
    return list(select(partial(gc.get_referrers, *objects), (type, NOT_TUPLE)))


def _tracing():
    tracemalloc = sys.modules.get("tracemalloc")
    return tracemalloc is not None and tracemalloc.is_tracing()


def _referents_list():
    return list(chain.from_iterable(map(gc.get_referents, heap())))


def _load(name):
    """A module beside this one, under a private name, loaded by path as the agent loads the probes."""
    module_name = "_leakbench_" + name
    module = sys.modules.get(module_name)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


_naming = _load("backrefs_naming")  # edges, root words, the graph
_chains = _load("backrefs_chains")  # the search from samples up to a root
_sizes = _load("backrefs_sizes")  # objects that grow in size, not in count


class BackrefsProbe:
    def __init__(self, agent, options):
        self.agent = agent
        self.interval = float(options.get("interval", 1.0))
        self.max_depth = int(options.get("max_depth", 12))
        self.requested = [str(t) for t in options.get("types", [])]
        self.samples = int(options.get("samples", 5))
        self.top_types = int(options.get("top_types", 4))
        self.min_growth = int(options.get("min_growth", 50))
        self.chase_every = float(options.get("chase_every", 3 * self.interval))
        at = options.get("at")
        self.at = float(at) if at is not None else None
        self.prefer_sites = {(str(f), int(n)) for f, n in options.get("prefer_sites", [])}
        paths = sysconfig.get_paths()
        self.library = tuple(
            p.rstrip(os.sep) + os.sep
            for p in {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
            if p
        )
        self.chains = _chains.ChainSearch(agent, self.library, self.max_depth, _naming, referrers)
        self.sizes = _sizes.SizeWatch(agent, self.library, 2 * self.interval, _naming)
        self._reset()
        self.checkpoint("start")

    def _reset(self):
        self.started = time.time()
        self.index = 0
        self.baseline = None  # {key: count} at the first checkpoint
        self.base_ids = array("Q")
        self.prev_counts = {}
        self.grew_in = {}  # key -> intervals in which the count rose
        self.intervals = 0
        self.looks = 0  # looks at the containers (spaced apart on big heaps)
        self.next_look_at = 0.0
        self.modules_at_look = len(sys.modules)
        self.modules = len(sys.modules)
        self.first_len = {}  # id(container) -> its length when first seen
        self.prev_len = {}
        self.len_grew = {}  # id(container) -> intervals in which it got longer
        self.first_seen_at = {}  # id(container) -> the interval it was first seen in
        self.next_at = 0.0
        self.last_chase = 0.0
        self.at_done = False
        self.results = {}  # type key -> the latest chase result for it
        self.strength = {}  # type key -> status of that result
        self._user = {}  # type key -> defined in the program's own code
        self._holders = {}  # id -> growing container, during one checkpoint only
        self.untracked = set()  # requested types the collector does not track: found through referents
        self.sized = set()  # type keys whose latest chain was found through growth in size
        self.types = {}  # id(type) -> [weak reference to the type (or None), key, bytes per object]
        self.stride = 1  # every n-th object is counted (1: all of them)
        self.safe = False  # classes hash safely (set at each checkpoint): objects may be selected by type
        self.count_each_s = 0.0  # what counting one object cost at the latest checkpoint
        self.pause_s = 0.0  # what the latest checkpoint paused the target for, searches included
        self.count_s = 0.0  # ... of which counting
        self.max_pause_s = 0.0
        self.unfenced = 0  # searches made without the fence (other threads kept asking for the GIL)
        self.budget_hits = 0  # searches stopped by the pause budget
        self.chase_s = 0.0  # what the latest search took
        self.fenced_s = 0.0  # what the latest look at the heap inside the fence took, the search apart
        self._holder_ids = set()  # ids of the growing containers at the latest checkpoint
        self._chase_event = None
        if hasattr(self, "sizes"):
            self.sizes.reset()

    # -- counting ----------------------------------------------------------------------------------------
    def checkpoint(self, reason):
        """Count and look at the containers (C passes that keep nothing of the target but containers), follow
        what grows (inside the agent's fence when it can be set up), then write the files."""
        began = time.perf_counter()
        safe = types_hash_safely()
        self.safe = safe
        self._plan_stride()
        raw = count_types(self.stride, safe)
        count_cost = pass_cost = time.perf_counter() - began
        # what roots hold directly: reachable objects only, never a half-built one; reads tracemalloc's traces
        sizes_began = time.perf_counter()
        self.sizes.observe(self._own_ids() | self._holder_ids)
        sizes_cost = time.perf_counter() - sizes_began
        try:
            out = self._count(reason, raw, safe, count_cost, pass_cost)
        finally:
            raw.clear()
            self._holders.clear()
        out["event"]["sizes_cost_s"] = round(sizes_cost, 4)
        pause = time.perf_counter() - began
        self.pause_s = pause
        self.max_pause_s = max(self.max_pause_s, pause)
        self._write(out, pause)
        # Counting walks the whole heap: space the checkpoints so that they cost at most a fifth of the run
        # (reading tracemalloc's traces keeps its own, sparser schedule).
        self.next_at = time.time() + max(self.interval, (COST_SHARE - 1) * (pause - self.sizes.scan_cost_s))

    def _plan_stride(self):
        """A heap that grew a lot since the latest count would make this one long (a program building its
        data): the stride is raised beforehand from what counting one object cost then."""
        if self.count_each_s <= 0:
            return
        objects = self.chains.heap_size()  # one C pass, no object counted
        if objects <= 200000:
            return
        cap = MAX_STRIDE_TRACED if _tracing() else MAX_STRIDE
        wanted = math.ceil(objects * self.count_each_s / PAUSE_TARGET_S)
        if wanted > self.stride:
            self.stride = min(cap, wanted)

    def _follow(self, keys, sized, types_of, growing, reason, now):
        """The search, inside the agent's fence when it can be set up (tuples may then be on a chain), else
        without ever holding a tuple the heap lists (a half-built one may be among them)."""
        final = reason.startswith("final")
        budget = min(MAX_CHASE_BUDGET_S, CHASE_BUDGET_S * 2**self.budget_hits)
        if final or self.at is not None:
            budget = max(budget, FINAL_CHASE_BUDGET_S)
        with self.agent.fence(budget) as deadline:
            fenced = deadline is not None
            if not fenced:
                self.unfenced += 1
                if _APPLY is None:
                    return []  # Python < 3.11: no safe way to follow without the fence
            self.chains.tuples = fenced
            until = time.perf_counter() + budget
            self.chains.deadline = min(deadline, until) if fenced else until
            try:
                return self.chase(keys, sized, types_of, growing, reason, now)
            finally:
                self.chains.deadline = None
                self.chains.tuples = False

    def _count(self, reason, raw, safe, count_cost, pass_cost):
        """Counts per type and the growing containers, then the search."""
        began = time.perf_counter()
        stride = self.stride
        tmap = {id(tp): tp for tp in raw} if safe else None
        counts = {id(k): n * stride for k, n in raw.items()} if safe else {k: n * stride for k, n in raw.items()}
        self._resolve(counts, tmap, safe)
        tmap = None
        by_key = {}
        types_of = {}  # key -> [type ids]
        each = {}
        for tid, n in counts.items():
            entry = self.types.get(tid)
            if entry is None:
                continue
            key = entry[1]
            if key.startswith("_leakbench"):
                continue
            size = int(entry[2] * n)
            old = by_key.get(key)
            by_key[key] = [n, size] if old is None else [old[0] + n, old[1] + size]
            types_of.setdefault(key, []).append(tid)
            each[key] = entry[2]
        objects = sum(counts.values())
        self.chains.heap_objects = objects
        by_key.update(self._count_untracked())
        ids = array("Q", sorted(map(id, heap()))) if self.baseline is None else None
        count_cost += time.perf_counter() - began
        self.count_s = count_cost
        # A big heap (and tracemalloc tracing every int a count makes) makes counting slow: count every n-th
        # object so that a count pauses the target for about PAUSE_TARGET_S; the report says so.
        self.count_each_s = pass_cost * stride / max(objects, 1)
        if objects <= 200000:
            self.stride = 1
        elif pass_cost > PAUSE_TARGET_S:
            cap = MAX_STRIDE_TRACED if _tracing() else MAX_STRIDE
            self.stride = min(cap, math.ceil(self.stride * pass_cost / PAUSE_TARGET_S))
        elif pass_cost < PAUSE_TARGET_S / 3 and self.stride > 1:
            self.stride = max(1, self.stride // 2)
        now = time.time()
        first = self.baseline is None
        importing = len(sys.modules) != self.modules
        user = {k for k, tids in types_of.items() if self._user_type(k, tids[0])}
        if first:
            self.baseline = {k: v[0] for k, v in by_key.items()}
            self.base_ids = ids
        else:
            self.intervals += 1
            for key, (n, _) in by_key.items():
                delta = n - self.prev_counts.get(key, 0)
                if importing and key not in user:
                    # What an import makes (functions, classes, tables) is not growth: move the baseline.
                    self.baseline[key] = self.baseline.get(key, 0) + delta
                elif delta > 0:
                    self.grew_in[key] = self.grew_in.get(key, 0) + 1
        del ids
        self.modules = len(sys.modules)
        # The containers' watch costs a pass over every container on the heap: on a big heap it looks at
        # them less often than the counts (at most a tenth of the run), always at the start and the end.
        look = first or reason.startswith("final") or bool(self.requested) or time.perf_counter() >= self.next_look_at
        growing = []
        if look:
            look_began = time.perf_counter()
            importing_c = len(sys.modules) != self.modules_at_look
            self.modules_at_look = len(sys.modules)
            self.looks += 1
            held = containers(safe) if _APPLY is not None else []
            lengths, big = container_lengths(held)
            held.clear()
            for cid in self._own_ids():
                lengths.pop(cid, None)
            for cid, size in lengths.items():
                if cid not in self.first_len:
                    # made during the run: all of it is growth; there at the start or made by an import: not
                    self.first_len[cid] = size if first or importing_c else 0
                    self.first_seen_at[cid] = self.looks
                elif importing_c:
                    self.first_len[cid] += size - self.prev_len.get(cid, size)
                elif size > self.prev_len.get(cid, size):
                    self.len_grew[cid] = self.len_grew.get(cid, 0) + 1
            self.first_len = {cid: n for cid, n in self.first_len.items() if cid in lengths}
            self.len_grew = {cid: n for cid, n in self.len_grew.items() if cid in lengths}
            self.first_seen_at = {cid: n for cid, n in self.first_seen_at.items() if cid in lengths}
            self.prev_len = lengths
            growing = self._growing_containers(lengths, big)
            big.clear()
            cost = time.perf_counter() - look_began
            self.next_look_at = time.perf_counter() + (0 if cost < 0.05 else (2 * COST_SHARE - 1) * cost)
        self._holder_ids = set(self._holders)
        counts_text = json.dumps({"types": by_key, "containers": growing, "user_types": sorted(user)})
        event = {
            "index": self.index,
            "reason": reason,
            "taken_at": now,
            "objects": objects,
            "cost_s": round(count_cost, 4),
            "traces_cost_s": round(self.sizes.scan_cost_s, 4),
            "traces_stopped": self.sizes.scans_stopped,
            "gc_enabled": gc.isenabled(),
            "stride": stride,
            "gc_garbage": len(gc.garbage),
            "modules": len(sys.modules),
        }
        self.index += 1
        self.prev_counts = {k: v[0] for k, v in by_key.items()}
        chase = self._to_chase(by_key, each, growing, reason, now)
        sized = self._grown_in_size() if chase is not None or self.at is None else []
        if chase is None:
            # Something newly seen growing in size is followed at once: a script's globals are gone at exit.
            sized = [s for s in sized if s[0] not in self.strength]
        results = []
        if chase or sized:
            results = self._follow(chase or [], sized, types_of, growing, reason, now)
        del sized
        chase_event, self._chase_event = self._chase_event, None
        return {"counts": counts_text, "event": event, "results": results, "chase": chase_event}

    def _write(self, out, pause):
        path = os.path.join(self.agent.artifact_dir(), f"backrefs-counts-{out['event']['index']:04d}.json")
        with open(path, "w") as handle:
            handle.write(out["counts"])
        self.agent.emit(
            "backrefs-counts",
            path=path,
            pause_s=round(pause, 4),
            max_pause_s=round(self.max_pause_s, 4),
            unfenced=self.unfenced,
            **out["event"],
        )
        for result in out["results"]:
            self._save(result)
        out["results"] = None
        if out.get("chase") is not None:
            self.agent.emit("backrefs-chase", **out["chase"])

    def _resolve(self, counts, tmap, safe):
        """Names and bytes per object for the type ids counted; the types themselves are held weakly.

        Bytes per object is the type's own C size (__basicsize__, read from the type, no instance needed);
        when classes do not hash safely, the types are found with one more C pass over the heap.
        """
        known = self.types
        stale = [tid for tid in counts if tid not in known or (known[tid][0] is not None and known[tid][0]() is None)]
        if not stale:
            return
        if tmap is None:
            if _APPLY is None:
                return
            tmap = type_map()
        for tid in stale:
            tp = tmap.get(tid)
            if tp is None:
                continue
            try:
                ref = weakref.ref(tp)
            except TypeError:
                ref = None
            known[tid] = [ref, _naming.type_key(tp), _naming.basic_size(tp)]
        tp = tmap = None
        # a type no longer counted (sampling may miss a rare one) is forgotten only once it is gone
        for tid in [t for t, e in known.items() if t not in counts and (e[0] is None or e[0]() is None)]:
            del known[tid]

    def _user_type(self, key, tid):
        """A class defined in the program's own code (not the standard library, not site-packages)."""
        known = self._user.get(key)
        if known is None:
            entry = self.types.get(tid)
            tp = entry[0]() if entry is not None and entry[0] is not None else None
            d = _naming.module_dict(sys.modules.get(_naming.type_module(tp))) if tp is not None else None
            path = d.get("__file__") if d is not None else None
            known = type(path) is str and not path.startswith(self.library) and not self.agent.is_own_file(path)
            self._user[key] = known
        return known

    def _own_ids(self):
        """This probe's and the agent's own containers, never counted as the target's growth."""
        out = {id(self.__dict__), id(self.agent.__dict__)}
        for holder in (self.__dict__, self.agent.__dict__):
            out.update(id(v) for v in holder.values())
        for entry in self.types.values():
            out.add(id(entry))
        return out

    def _count_untracked(self):
        """Requested types the collector does not track (str, bytes, numpy arrays): counted as referents."""
        if not self.untracked:
            return {}
        found = {}
        for key, held in self._untracked_objects(self.untracked).items():
            found[key] = [len(held), sum(_naming.c_size(o) or 0 for o in held.values())]
            held.clear()
        return found

    def _untracked_objects(self, names):
        """{key: {id: object}} of the objects of the named types that tracked objects refer to (reachable:
        never half-built)."""
        if _APPLY is None:
            return {}
        one = dict(pairs(_referents_list, (type, id), (type,)))
        wanted = {tid: _naming.type_key(tp) for tid, tp in one.items() if _matches(names, _naming.type_key(tp))}
        one.clear()
        if not wanted:
            return {}
        out = {}
        for o in select(_referents_list, (type, id, frozenset(wanted).__contains__)):
            out.setdefault(wanted[id(type(o))], {})[id(o)] = o
        o = None
        return out

    def _growing_containers(self, lengths, held):
        """Builtin containers whose length grew by at least min_growth since they were first seen (`held`:
        the containers whose lengths were taken)."""
        growing = []
        wanted = {cid: n - self.first_len.get(cid, n) for cid, n in lengths.items()}
        seen = {cid: self.looks - self.first_seen_at.get(cid, 0) for cid in wanted}
        wanted = {
            cid: g
            for cid, g in wanted.items()
            # grew since it was first seen, and in at least half of the intervals since (a list made
            # whole in one go, like a function's result, is not a growing container)
            if g >= self.min_growth and self.len_grew.get(cid, 0) >= 1 and 2 * self.len_grew.get(cid, 0) >= seen[cid]
        }
        modules = {id(_naming.module_dict(m)) for m in list(sys.modules.values())} | {id(sys.modules)}
        for cid in modules:
            wanted.pop(cid, None)
        if not wanted:
            return growing
        if len(wanted) > MAX_GROWING_EXAMINED:
            most = sorted(wanted.values(), reverse=True)[MAX_GROWING_EXAMINED - 1]
            wanted = {cid: g for cid, g in wanted.items() if g >= most}
        for o in list(compress(held, map(wanted.__contains__, map(id, held))))[: 2 * MAX_GROWING_EXAMINED]:
            if not _naming.one_of(type(o), CONTAINERS):
                continue
            grew = wanted[id(o)]
            elements = _naming.newest_elements(o)
            keys = {}
            for e in elements:
                k = _naming.type_key(type(e))
                keys[k] = keys.get(k, 0) + 1
            if not keys:
                continue
            element = max(keys, key=keys.get)
            sample = elements[:: max(1, len(elements) // SIZE_SAMPLE)][:SIZE_SAMPLE]
            each = sum(self._size(e) for e in sample) / len(sample)
            sample = None
            self._holders[id(o)] = o
            growing.append(
                {
                    "id": id(o),
                    "container": type(o).__name__,
                    "element": element,
                    "length": len(o),
                    "growth": grew,
                    "bytes_growth": int(each * grew),
                }
            )
        o = elements = None
        growing.sort(key=lambda c: c["bytes_growth"], reverse=True)
        return growing[:50]

    @staticmethod
    def _size(obj):
        """An object's own size plus that of the untracked objects (strings, bytes, arrays) it refers to."""
        try:
            total = _naming.c_size(obj) or 0
            d = _naming.instance_dict(obj)
            for r in gc.get_referents(obj):
                if not gc.is_tracked(r) and not issubclass(type(r), type):
                    total += _naming.c_size(r) or 0
                elif r is d:
                    total += sum(_naming.c_size(v) or 0 for v in d.values() if not gc.is_tracked(v))
            return total
        except Exception:
            return 0

    # -- choosing what to follow --------------------------------------------------------------------------
    def _to_chase(self, by_key, each, growing, reason, now):
        """The type keys to follow now (maybe none), or None when it is not the time to follow anything."""
        final = reason.startswith("final")
        at_due = self.at is not None and not self.at_done and (final or now - self.started >= self.at)
        if self.at is not None and not at_due:
            return None  # with --at, the chains are taken at that moment only
        if self.intervals < 1:
            return None
        if self.requested:  # one type the user asked for: worth following at every checkpoint
            for name in self.requested:
                if not self._match(name, by_key) and name not in self.untracked:
                    self.untracked.add(name)  # maybe a type the collector does not track: count it next time
            # ... when it grew: in count, as containers that get longer (a list that keeps growing is a
            # list that grows), or as the elements of growing containers. One that did not grow is not
            # followed (an arbitrary object of it says nothing); the stage says so, and what grew instead.
            base = self.baseline or {}
            out = []
            for name in self.requested:
                key = self._match(name, by_key)
                if key is None:
                    continue
                grown = by_key[key][0] - base.get(key, 0)
                # made once and kept (a table built at start) is not growth: it must rise in most intervals,
                # judged over three of them at least, or at the end
                enough = self.intervals >= 3 or final
                steady = enough and self.grew_in.get(key, 0) * 2 >= self.intervals
                held = any(c["element"] == key or c["container"] == key for c in growing)
                if held or (grown >= self.min_growth and steady) or _matches(self.untracked, key):
                    out.append(key)
            return out
        if not (final or at_due or now - self.last_chase >= max(self.chase_every, COST_SHARE * self.chase_s)):
            return None
        base = self.baseline or {}
        ranked = []
        for key, (n, size) in by_key.items():
            grown = n - base.get(key, 0)
            if grown < self.min_growth or key in ("frame", "cell", "traceback"):
                continue
            steady = self.intervals < 3 or self.grew_in.get(key, 0) * 2 >= self.intervals
            if not steady:
                continue
            ranked.append((grown * max(each.get(key, 0), size / max(n, 1)), key))
        chosen = {k for _, k in ranked}
        for c in growing:
            if c["element"] not in chosen:
                ranked.append((c["bytes_growth"], c["element"]))
        ranked.sort(reverse=True)
        out = []
        for _, key in ranked:
            if key not in out:
                out.append(key)
        return out[: self.top_types]

    def _match(self, name, by_key):
        if name in by_key:
            return name
        short = [k for k in by_key if k.rsplit(".", 1)[-1] == name]
        return short[0] if short else None

    # -- the search -----------------------------------------------------------------------------------------
    def _grown_in_size(self):
        """[(type key, [objects], bytes grown, how, slot path)]: objects that grew in size, not in count."""
        skip = self._own_ids() | set(self._holders)
        found = self.sizes.grown(list(self._holders.values()), _naming.newest_elements, skip, _naming.type_key)
        if self.requested:
            found = [f for f in found if _matches(self.requested, f[0])]
        return found[: self.top_types]

    def chase(self, keys, sized, types_of, growing, reason, now):
        """The chains for `keys` (and the objects that grew in size): plain data, nothing of the target."""
        began = time.perf_counter()
        final = reason.startswith("final") or self.at is not None
        if self.at is not None:
            self.at_done = True
        self.last_chase = now
        counts_now = self.prev_counts
        base = self.baseline or {}
        holders = {}
        for c in growing:
            holders.setdefault(c["element"], []).append(c)
        wanted = {}
        for key in keys:
            for tid in types_of.get(key, ()):
                wanted[tid] = key
        cands = {key: [] for key in keys}
        holding = {c["id"] for c in growing}  # reported through what they hold: never a sample
        classes = {tid: self._class(tid) for tid in wanted} if self.safe else {}
        if wanted and classes and None not in classes.values():
            for key in keys:
                cands[key] = of_classes([classes[tid] for tid in types_of.get(key, ())], self.chains.tuples)
        elif wanted:
            for o in of_types(wanted, tuples=self.chains.tuples):
                cands[wanted[id(type(o))]].append(o)
            o = None
        classes = None
        frames = self.chains.running_frames()
        own_ids = {id(frames), id(cands)}
        for lst in cands.values():
            own_ids.add(id(lst))
        results = []
        for key in keys:
            if self.chains.over():
                break
            containers = holders.get(key, [])
            longer = [c for c in growing if c["container"] == key] if self.requested else []
            mode = "instances"
            if longer:
                # asked for a container type, and some of them keep getting longer: those are the answer
                containers = longer
                picked = [self._holders[longer[0]["id"]]]
                mode = "container"
            else:
                # (a type the collector tracks some objects of: strings are answered with their container)
                grown = counts_now.get(key, 0) - base.get(key, 0)
                held = self._held(containers, key, grown, frames) if key in types_of else []
                picked = held or self._pick(cands.get(key, []), frames, holding)
                held = None
            if not picked and containers:
                picked = [self._holders[containers[0]["id"]]]
                mode = "container"
            if not picked and _matches(self.untracked, key) and final and key not in self.strength:
                # Nothing held them in a growing container at any checkpoint: any object of the type will do.
                picked = self._find_untracked(key)
            if not picked:
                continue
            count_growth = counts_now.get(key, 0) - base.get(key, 0)
            if mode == "container" or count_growth <= 0:
                count_growth = sum(c["growth"] for c in containers) or count_growth
            if mode == "container":
                bytes_growth = sum(c["bytes_growth"] for c in containers)
            else:
                each = sum(self._size(o) for o in picked) / len(picked)
                bytes_growth = int(each * max(count_growth, 0))
            result = self.chains.search(picked, frames, own_ids | {id(picked)}, mode)
            result.update(
                type=key,
                count_growth=max(count_growth, 0),
                bytes_growth=max(bytes_growth, 0),
                samples=len(picked),
                mode=mode,
                taken_at=now,
                reason=reason,
            )
            results.append(result)
            del picked
        del cands
        followed = {r["type"] for r in results if r["status"] in ("rooted", "cycle")}
        # what the size watch hands over refers to the objects too: never part of a chain
        sized_ids = {id(sized)} | {id(e) for e in sized} | {id(e[1]) for e in sized} | {id(e[4]) for e in sized}
        for key, picked, grown, how, path in sized:
            if self.chains.over():
                break
            # A type already traced through its count keeps that chain; one object's size is the weaker claim.
            if key in followed or (self.strength.get(key) in ("rooted", "cycle") and key not in self.sized):
                continue
            # Along the slot it was found in first: the program may replace the object while the search looks
            # (then only a library call's local holds the old one), and a dict holding only untracked objects
            # is invisible to the search. The search is for what was found by its allocation line alone.
            result = self.chains.along(path, frames, "size") if path is not None else None
            if result is None:
                result = self.chains.search(picked, frames, own_ids | sized_ids, "size")
            if result["status"] != "rooted":
                continue  # an object that grows but is no longer held by a root: nothing to say about it
            self.sized.add(key)
            result.update(
                type=key,
                count_growth=0,
                bytes_growth=grown,
                samples=len(picked),
                mode="size",
                found_by=how,
                taken_at=now,
                reason=reason,
            )
            results.append(result)
            del picked
        frames.clear()
        self.chase_s = time.perf_counter() - began
        if any(r["status"] == "budget" for r in results) or self.chains.over():
            self.budget_hits += 1
        self._chase_event = {
            "index": self.index - 1,
            "reason": reason,
            "types": [r["type"] for r in results],
            "cost_s": round(self.chase_s, 4),
            "budget_hits": self.budget_hits,
        }
        return results

    def _held(self, containers, key, grown, frames):
        """The newest objects of the type in the containers that keep getting longer, when those hold most
        of the type's growth: kept by what grows, rather than any object of a common type (a dict, a tuple)
        made during the run, which may be a library's cache entry. A dict of strings is not tracked by the
        collector (nor counted with its type): only the container it is appended to shows it growing."""
        if not containers or 2 * sum(c["growth"] for c in containers) < grown:
            return []
        locals_ = frames["locals"]
        picked = []
        for c in containers:
            holder = self._holders.get(c["id"])
            if holder is None:
                continue
            for e in reversed(_naming.newest_elements(holder)):
                # not the one a running function is adding now: what stays is what the container holds
                if _naming.type_key(type(e)) == key and id(e) not in locals_:
                    picked.append(e)
                    if len(picked) >= self.samples:
                        return picked
            if picked:
                return picked
        return picked

    def _class(self, tid):
        """The type counted under `tid`, while it is alive (held weakly in self.types)."""
        entry = self.types.get(tid)
        return entry[0]() if entry is not None and entry[0] is not None else None

    def _pick(self, cands, frames, skip=()):
        """Objects made during the run, not a running frame's local, spread over the older half.

        gc.get_objects() lists the youngest generation first, so the second half holds the objects that
        survived collections: the ones that stay, rather than what is in flight.
        """
        if not cands:
            return []
        base = self.base_ids
        locals_ = frames["locals"]

        def new(o):
            oid = id(o)
            i = bisect_left(base, oid)
            return not (i < len(base) and base[i] == oid) and oid not in locals_ and oid not in skip

        older = cands[len(cands) // 2 :]
        pool = self._preferred(older) or older
        step = max(1, len(pool) // (4 * self.samples))
        picked = []
        for o in pool[::step]:
            if new(o):
                picked.append(o)
                if len(picked) >= self.samples:
                    break
        if not picked:
            for o in cands[: len(cands) // 2 : max(1, len(cands) // (8 * self.samples))]:
                if new(o):
                    picked.append(o)
                    if len(picked) >= self.samples:
                        break
        del pool, older
        return picked

    def _preferred(self, objs):
        """With tracemalloc running: the objects allocated where most of the others were (or at a suspect)."""
        try:
            import tracemalloc
        except ImportError:
            return []
        if not tracemalloc.is_tracing():
            return []
        sites = {}
        for o in objs[:: max(1, len(objs) // 500)]:
            site = self.sizes.object_site(o)  # the deepest frame in the program's code, as analysis attributes
            if site is not None:
                sites.setdefault(site, []).append(o)
        if not sites:
            return []
        chosen = [s for s in sites if s in self.prefer_sites]
        best = chosen[0] if chosen else max(sites, key=lambda s: len(sites[s]))
        return sites[best]

    def _find_untracked(self, key):
        found = list(self._untracked_objects({key}).get(key, {}).values())
        if not found:
            return []
        picked = found[len(found) // 2 :: max(1, len(found) // (2 * self.samples))][: self.samples]
        del found
        return picked

    def _save(self, result):
        strong = ("rooted", "cycle")
        if result["status"] not in strong and self.strength.get(result["type"]) in strong:
            return  # a chain found earlier, while the objects were reachable, says more than "no root" now
        self.strength[result["type"]] = result["status"]
        name = "".join(ch if ch.isalnum() else "_" for ch in result["type"])
        folder = self.agent.artifact_dir()
        dot_path = os.path.join(folder, f"backrefs-{name}.dot")
        with open(dot_path, "w") as handle:
            handle.write(result.pop("dot"))
        result["dot_path"] = dot_path
        path = os.path.join(folder, f"backrefs-{name}.json")
        text = json.dumps(result, default=str)
        with open(path, "w") as handle:
            handle.write(text)
        self.results[result["type"]] = path
        self.agent.emit(
            "backrefs",
            type=result["type"],
            path=path,
            status=result["status"],
            root=result["root"]["words"],
            taken_at=result["taken_at"],
        )

    # -- agent calls ------------------------------------------------------------------------------------
    def tick(self, now):
        if now >= self.next_at or (self.at is not None and not self.at_done and now - self.started >= self.at):
            self.checkpoint("interval")

    def final(self, reason):
        self.checkpoint("final:" + reason)

    def after_fork(self):
        self._reset()
        self.checkpoint("start")


def _matches(names, key):
    return key in names or key.rsplit(".", 1)[-1] in names


def start(agent, options):
    return BackrefsProbe(agent, options)
