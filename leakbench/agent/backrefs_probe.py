"""Probe: which gc-tracked types grow in count, and the reference chain from a root to a sample of them.

At its own interval (and when the target ends or is stopped) it counts the objects the collector tracks,
per type, without collecting first: garbage left by a disabled or starved collector is evidence too. It
also watches the builtin containers that keep growing, which is how objects the collector does not track
(numpy arrays, strings, bytes) show up. For the types that grow it samples objects made during the run and
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
import os
import sys
import sysconfig
import time
from array import array
from bisect import bisect_left
from collections import Counter

CONTAINERS = (list, dict, set)
MIN_CONTAINER_LEN = 64


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
        self.chains = _chains.ChainSearch(agent, self.library, self.max_depth, _naming)
        self.sizes = _sizes.SizeWatch(agent, self.library, 2 * self.interval)
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
        if hasattr(self, "sizes"):
            self.sizes.reset()

    # -- counting ----------------------------------------------------------------------------------------
    def checkpoint(self, reason):
        began = time.perf_counter()
        objs = gc.get_objects()
        # C-level passes: under tracemalloc every int a Python-level loop makes is traced, and costs.
        counts = Counter(map(type, objs))
        # one instance per type, to estimate what each one keeps
        last = dict(zip(map(type, objs), objs))  # noqa: B905 (guest code for Python 3.8+)
        containers = [o for o in objs if type(o) in CONTAINERS]
        lengths = {}
        sizes = {}
        getsizeof = sys.getsizeof
        for o in containers:
            size = len(o)
            tp = type(o)
            sizes[tp] = sizes.get(tp, 0) + getsizeof(o)
            if size >= MIN_CONTAINER_LEN:
                lengths[id(o)] = size
        del containers
        for tp, o in last.items():
            if tp not in sizes:
                sizes[tp] = self._size(o) * counts[tp]
        by_key = {}
        types_of = {}
        each = {}
        for tp, n in counts.items():
            key = _naming.type_key(tp)
            if key.startswith("_leakbench"):
                continue
            old = by_key.get(key)
            by_key[key] = [n, sizes.get(tp, 0)] if old is None else [old[0] + n, old[1] + sizes.get(tp, 0)]
            types_of.setdefault(key, tp)
            if tp not in CONTAINERS:
                each[key] = sizes.get(tp, 0) / n
        last.clear()
        extra = self._count_untracked(objs)
        by_key.update(extra)
        ids = array("Q", sorted(map(id, objs))) if self.baseline is None else None
        count_cost = time.perf_counter() - began
        now = time.time()
        first = self.baseline is None
        importing = len(sys.modules) != self.modules
        user = {k for k, tp in types_of.items() if self._user_type(k, tp)}
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
        self.modules = len(sys.modules)
        for cid in self._own_ids() | {id(objs)}:  # gc.get_objects() lists itself
            lengths.pop(cid, None)
        for cid, size in lengths.items():
            if cid not in self.first_len:
                # made during the run: all of it is growth; there at the start or made by an import: not
                self.first_len[cid] = size if first or importing else 0
                self.first_seen_at[cid] = self.intervals
            elif importing:
                self.first_len[cid] += size - self.prev_len.get(cid, size)
            elif size > self.prev_len.get(cid, size):
                self.len_grew[cid] = self.len_grew.get(cid, 0) + 1
        self.first_len = {cid: n for cid, n in self.first_len.items() if cid in lengths}
        self.len_grew = {cid: n for cid, n in self.len_grew.items() if cid in lengths}
        self.first_seen_at = {cid: n for cid, n in self.first_seen_at.items() if cid in lengths}
        self.prev_len = lengths
        growing = self._growing_containers(objs, lengths)
        sizes_began = time.perf_counter()
        self.sizes.observe(self._own_ids() | set(self._holders))
        sizes_cost = time.perf_counter() - sizes_began
        path = os.path.join(self.agent.artifact_dir(), f"backrefs-counts-{self.index:04d}.json")
        # dumps, not dump: the one-shot C encoder leaves no closures behind to be counted as growth
        text = json.dumps({"types": by_key, "containers": growing, "user_types": sorted(user)})
        with open(path, "w") as handle:
            handle.write(text)
        del text
        self.agent.emit(
            "backrefs-counts",
            index=self.index,
            reason=reason,
            path=path,
            taken_at=now,
            objects=len(objs),
            cost_s=round(count_cost, 4),
            sizes_cost_s=round(sizes_cost, 4),
            traces_cost_s=round(self.sizes.scan_cost_s, 4),
            gc_enabled=gc.isenabled(),
            gc_garbage=len(gc.garbage),
            modules=len(sys.modules),
        )
        self.index += 1
        self.prev_counts = {k: v[0] for k, v in by_key.items()}
        chase = self._to_chase(by_key, each, growing, reason, now)
        sized = self._grown_in_size() if chase is not None or self.at is None else []
        if chase is None:
            # Something newly seen growing in size is followed at once: a script's globals are gone at exit.
            sized = [s for s in sized if s[0] not in self.strength]
        if chase or sized:
            self.chase(chase or [], sized, objs, types_of, growing, reason, now)
        del sized
        self._holders.clear()
        del objs
        # Counting walks the whole heap: space the checkpoints so they cost at most a fifth of the run
        # (reading tracemalloc's traces keeps its own, sparser schedule).
        cost = time.perf_counter() - began - self.sizes.scan_cost_s
        self.next_at = time.time() + max(self.interval, 4 * cost)

    def _user_type(self, key, tp):
        """A class defined in the program's own code (not the standard library, not site-packages)."""
        known = self._user.get(key)
        if known is None:
            module = sys.modules.get(getattr(tp, "__module__", "") or "")
            path = getattr(module, "__file__", None) or ""
            known = bool(path) and not path.startswith(self.library) and not self.agent.is_own_file(path)
            self._user[key] = known
        return known

    def _own_ids(self):
        """This probe's and the agent's own containers, never counted as the target's growth."""
        out = {id(self.__dict__), id(self.agent.__dict__)}
        for holder in (self.__dict__, self.agent.__dict__):
            out.update(id(v) for v in holder.values())
        return out

    def _count_untracked(self, objs):
        """Requested types the collector does not track (e.g. numpy arrays): count them as referents."""
        if not self.untracked:
            return {}
        seen = set()
        found = {}
        for o in objs:
            for r in gc.get_referents(o):
                key = _naming.type_key(type(r))
                if _matches(self.untracked, key) and id(r) not in seen:
                    seen.add(id(r))
                    entry = found.setdefault(key, [0, 0])
                    entry[0] += 1
                    entry[1] += sys.getsizeof(r)
        return found

    def _growing_containers(self, objs, lengths):
        """Builtin containers whose length grew by at least min_growth since they were first seen."""
        growing = []
        wanted = {cid: n - self.first_len.get(cid, n) for cid, n in lengths.items()}
        seen = {cid: self.intervals - self.first_seen_at.get(cid, 0) for cid in wanted}
        wanted = {
            cid: g
            for cid, g in wanted.items()
            # grew since it was first seen, and in at least half of the intervals since (a list made
            # whole in one go, like a function's result, is not a growing container)
            if g >= self.min_growth and self.len_grew.get(cid, 0) >= 1 and 2 * self.len_grew.get(cid, 0) >= seen[cid]
        }
        modules = {id(getattr(m, "__dict__", None)) for m in list(sys.modules.values())} | {id(sys.modules)}
        for cid in modules:
            wanted.pop(cid, None)
        if not wanted:
            return growing
        for o in objs:
            grew = wanted.get(id(o)) if type(o) in CONTAINERS else None
            if grew is None:
                continue
            elements = _naming.newest_elements(o)
            keys = {}
            for e in elements:
                k = _naming.type_key(type(e))
                keys[k] = keys.get(k, 0) + 1
            if not keys:
                continue
            element = max(keys, key=keys.get)
            each = sum(self._size(e) for e in elements) / len(elements)
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
        growing.sort(key=lambda c: c["bytes_growth"], reverse=True)
        return growing[:50]

    @staticmethod
    def _size(obj):
        """An object's own size plus that of the untracked objects (strings, bytes, arrays) it refers to."""
        try:
            total = sys.getsizeof(obj)
            for r in gc.get_referents(obj):
                if not gc.is_tracked(r) and not isinstance(r, type):
                    total += sys.getsizeof(r)
                elif type(r) is dict and r is getattr(obj, "__dict__", None):
                    total += sum(sys.getsizeof(v) for v in r.values() if not gc.is_tracked(v))
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
            return [m for m in (self._match(n, by_key) for n in self.requested) if m]
        if not (final or at_due or now - self.last_chase >= self.chase_every):
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

    def chase(self, keys, sized, objs, types_of, growing, reason, now):
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
            tp = types_of.get(key)
            if tp is not None:
                wanted[tp] = key
        cands = {key: [] for key in keys}
        if wanted:
            holding = {c["id"] for c in growing}  # reported through what they hold
            for o in objs:
                key = wanted.get(type(o))
                if key is not None and id(o) not in holding:
                    cands[key].append(o)
        frames = self.chains.running_frames()
        own_ids = {id(frames), id(cands), id(objs)}
        for lst in cands.values():
            own_ids.add(id(lst))
        results = []
        for key in keys:
            containers = holders.get(key, [])
            picked = self._pick(cands.get(key, []), frames)
            mode = "instances"
            if not picked and containers:
                picked = [self._holders[containers[0]["id"]]]
                mode = "container"
            if not picked and _matches(self.untracked, key) and final and key not in self.strength:
                # Nothing held them in a growing container at any checkpoint: any object of the type will do.
                picked = self._find_untracked(key, objs)
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
        for result in results:
            self._save(result)
        self.agent.emit(
            "backrefs-chase",
            index=self.index - 1,
            reason=reason,
            types=[r["type"] for r in results],
            cost_s=round(time.perf_counter() - began, 4),
        )

    def _pick(self, cands, frames):
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
            return not (i < len(base) and base[i] == oid) and oid not in locals_

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

    def _find_untracked(self, key, objs):
        found = []
        seen = set()
        for o in objs:
            for r in gc.get_referents(o):
                if id(r) not in seen and _naming.type_key(type(r)) == key:
                    seen.add(id(r))
                    found.append(r)
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
