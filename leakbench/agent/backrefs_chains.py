"""The chain search: from sampled objects up through `gc.get_referrers`, one pass over the heap per level,
until a root is met (a module global, a class attribute, a local variable of a running frame, an
lru_cache, a thread-local, a logger, a closure cell), or else the reference cycle or native reference
that explains why no root holds them.

The agent's own objects and frames, and this search's own containers, are never part of a chain. Loaded
by the backrefs probe under a private module name; stdlib only.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import types
from itertools import islice, repeat
from operator import is_, methodcaller

_CALL = methodcaller("__call__")
MAX_FRONTIER = 4000
MIN_FRONTIER = 64
# gc.get_referrers compares every reference on the heap with every object it is given: a level costs about
# heap references x frontier. The frontier is cut so that one level stays within a fraction of a second.
LEVEL_COMPARISONS = 3e8
# A referrer with more referents than this is matched to the frontier by identity (see _child), when that
# costs at most IDENTITY_SCAN comparisons; referents are otherwise scanned REFERENTS_CHUNK at a time.
BIG_REFERRER = 10000
IDENTITY_SCAN = 5e7
REFERENTS_CHUNK = 65536
CYCLE_REFERENTS = 200000  # references looked at for a cycle back to a sample, at most
# Levels searched past a passing holder (a library function's local, a closure cell) for a root of the
# program's own: a cell's function is held four references up (cell -> closure tuple -> function -> the
# list it was registered in -> the module's namespace).
PASSING_LEVELS = 4
SLOT_ROOTS = {"m": "module-global", "c": "class-attribute", "f": "frame-local"}
ROOT_PRIORITY = ("lru-cache", "thread-local", "logger", "closure", "class-attribute", "module-global", "frame-local")


class ChainSearch:
    def __init__(self, agent, library, max_depth, naming, referrers):
        self.agent = agent
        self.library = library  # path prefixes of the standard library and site-packages
        self.max_depth = max_depth
        self.naming = naming
        self.deadline = None  # perf_counter() time by which a search stops: the pause it may cost
        self.referrers = referrers  # gc.get_referrers, with tuples left out unless `tuples`
        self.tuples = False  # inside the agent's fence: a tuple may be on a chain
        self.heap_objects = 0  # counted at the latest checkpoint: bounds the frontier

    def frontier(self):
        per_level = LEVEL_COMPARISONS / max(2 * self.heap_objects, 1)
        return int(max(MIN_FRONTIER, min(MAX_FRONTIER, per_level)))

    @staticmethod
    def heap_size():
        """How many objects the collector tracks now (the list is made and measured in C, then dropped)."""
        return sum(map(len, map(_CALL, (gc.get_objects,))))

    def over(self):
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def running_frames(self):
        """Locals of every running frame of the target's threads: the roots the collector cannot see."""
        # threading.enumerate() takes a lock a starting thread may hold, and a Thread subclass may compute
        # its name: read the registry and the stored names directly.
        names = {}
        for ident, thread in list(threading._active.items()):
            name = self.naming.slot_value(thread, "_name")
            names[ident] = name if type(name) is str else str(ident)
        main = threading.main_thread().ident
        current = threading.get_ident()
        refs = {}
        dicts = set()
        # named after a closure's free variable (a comprehension reading its function's local, on 3.11): the
        # frame that owns the variable, further out, names it instead
        borrowed = set()
        for tid, top in sys._current_frames().items():
            if tid == current:
                continue
            thread = "the main thread" if tid == main else f"thread {names.get(tid, tid)!r}"
            f = top
            while f is not None:
                code = f.f_code
                if not self.agent.is_own_file(code.co_filename) and code.co_flags & 1:  # CO_OPTIMIZED: a function
                    values = f.f_locals
                    dicts.add(id(values))
                    user = not code.co_filename.startswith(self.library)
                    free = code.co_freevars
                    for name, value in values.items():
                        key = id(value)
                        old = refs.get(key)
                        if old is None or (user and not old[3]) or (key in borrowed and user >= old[3]):
                            refs[key] = (name, code.co_name, thread, user, code.co_filename, f.f_lineno)
                            if name in free:
                                borrowed.add(key)
                            else:
                                borrowed.discard(key)
                f = f.f_back
            del f
        return {"locals": refs, "dicts": dicts, "tuples": self.tuples}

    def _modules(self):
        out = {}
        for name, module in list(sys.modules.items()):
            d = self.naming.module_dict(module)
            if d is not None and type(name) is str and not name.startswith("_leakbench"):
                out.setdefault(id(d), name)
        return out

    def _root_kind(self, obj, modules, frames):
        oid = id(obj)
        if oid in modules:
            return "module-global"
        tp = type(obj)
        if tp is dict and self._namespace(obj, modules):
            return "module-global"
        name = self.naming.type_name(tp)
        if name == "_lru_cache_wrapper":
            return "lru-cache"
        if name == "_local" and self.naming.type_module(tp) in ("_thread", "_threading_local"):
            return "thread-local"
        if tp is types.CellType:
            return "closure"
        if issubclass(tp, type):
            return "class-attribute"
        logging = sys.modules.get("logging")
        logger = self.naming.module_dict(logging).get("Logger") if logging is not None else None
        if type(logger) is type and issubclass(tp, logger):
            return "logger"
        if oid in frames["locals"]:
            return "frame-local"
        return None

    @staticmethod
    def _namespace(d, modules):
        """A module's namespace no longer in sys.modules (a script's `__main__` once runpy has put the
        original back, a module deleted from it) that a function's `__globals__` or runpy's `run_globals`
        still holds: named after its `__name__`, and recorded in `modules` for the words and the graph."""
        # exec() puts `__builtins__` into every namespace code ran in; an instance dict never has both
        name = d.get("__name__")
        if type(name) is not str or name.startswith("_leakbench") or "__builtins__" not in d:
            return False
        modules[id(d)] = name
        return True

    def _passing(self, found, frames):
        """A holder the program did not choose as a root: a library function's local, or a closure cell
        (held in turn by the function, and that by whatever registered it)."""
        return found[0] == "closure" or not self._user_frame(found, frames)

    def search(self, samples, frames, own_ids, mode):
        modules = self._modules()
        own_ids = set(own_ids) | frames["dicts"]
        down = {id(s): None for s in samples}
        keep = {id(s): s for s in samples}
        order = [id(s) for s in samples]
        frontier = list(samples)
        own_ids.update((id(down), id(keep), id(frontier), id(samples), id(order), id(own_ids)))
        found = []
        depth = 0
        passing = None  # the depth at which a library function's local was met
        exhausted = False
        while True:
            if self.over():
                break  # the pause budget is spent: what was found so far, or "budget"
            for o in frontier:
                kind = self._root_kind(o, modules, frames)
                if kind and not (kind == "closure" and depth == 0):
                    found.append((kind, o))
            # A local of a library function (numpy's append() holding the array it was given) or a closure
            # cell is a passing holder: look a few levels further for the program's own root (the module
            # global the closure was registered in), and keep it only if none is found.
            if found and passing is None:
                passing = depth
            if depth >= self.max_depth or not all(self._passing(f, frames) for f in found):
                break
            if passing is not None and depth >= passing + PASSING_LEVELS:
                break
            # the heap may have grown since it was counted (the target runs on while a search is made)
            self.heap_objects = max(self.heap_objects, self.heap_size())
            del frontier[self.frontier() :]
            fids = {id(o) for o in frontier}
            args = tuple(frontier)
            own_ids.update((id(args), id(fids)))
            refs = self.referrers(args, self.tuples)
            own_ids.add(id(refs))
            nxt = []
            own_ids.add(id(nxt))
            for r in refs:
                rid = id(r)
                if rid in down or rid in own_ids or self._is_own(r):
                    continue
                child = self._child(r, args, fids)
                if child is None:
                    continue
                down[rid] = child
                keep[rid] = r
                order.append(rid)
                if len(nxt) < self.frontier():
                    nxt.append(r)
            del refs, args
            frontier[:] = nxt
            depth += 1
            if not frontier:
                exhausted = True
                break
        frontier.clear()
        if found:
            found.sort(key=lambda f: (self._passing(f, frames), ROOT_PRIORITY.index(f[0])))
            kind, root = found[0]
            path = [root]
            nid = down[id(root)]
            while nid is not None:
                path.append(keep[nid])
                nid = down[nid]
            result = self.naming.describe(kind, path, modules, frames, mode)
            ids = [id(o) for o in path]
        elif self.over():
            name = self.naming.type_key(type(samples[0]))
            result = {
                "status": "budget",
                "root": {"kind": "budget", "words": f"not found within the pause budget ({depth} references up)"},
                "chain": [f"({name}: the search stopped after {depth} levels to keep the target's pause short)"],
                "steps": [],
            }
            ids = []
        else:
            result = self._unreached(samples, keep, exhausted, mode)
            ids = result.pop("_path", [])
        result["dot"] = self.naming.graph(keep, down, order, ids, modules)
        keep.clear()
        down.clear()
        return result

    def _child(self, referrer, frontier, fids):
        """The id of the object of the frontier that `referrer` refers to, or None.

        A big container (an index of a million entries) is compared with the few objects of the frontier by
        identity in C: an id() per referent is an int that tracemalloc traces with its traceback, which
        made one such container cost seconds of pause. Otherwise the referents are scanned by id, a chunk at
        a time, within the search's budget.
        """
        kids = gc.get_referents(referrer)
        try:
            if len(kids) > BIG_REFERRER and len(kids) * len(frontier) <= IDENTITY_SCAN:
                for f in frontier:
                    if any(map(is_, kids, repeat(f))):
                        return id(f)
                return None
            for start in range(0, len(kids), REFERENTS_CHUNK):
                for k in islice(kids, start, start + REFERENTS_CHUNK):
                    if id(k) in fids:
                        return id(k)
                if self.over():
                    return None
            return None
        finally:
            kids.clear()

    def along(self, slot_path, frames, mode):
        """The chain along a path already known (a slot's kind, then its holders from the root to the object).

        For when the search cannot see a holder: a dict that holds only objects the collector does not
        track (bytes, str, arrays) is not tracked either, so gc.get_referrers never returns it. None when
        the root is gone (a module unloaded, a frame returned).
        """
        kind = SLOT_ROOTS.get(slot_path[0])
        path = list(slot_path[2:])
        modules = self._modules()
        if not path or kind is None:
            return None
        if kind != "frame-local":
            # the program runs on while we look: follow the names again from the root, to what they hold now
            path = self._follow(path[0], slot_path[1])
            if path is None:
                return None
        if (kind == "module-global" and id(path[0]) not in modules) or (
            kind == "frame-local" and id(path[0]) not in frames["locals"]
        ):
            return None
        # Named by the slot's names, not by identity: the program may replace the object again meanwhile.
        names = slot_path[1][1:] if kind == "frame-local" else slot_path[1]
        edges = [
            f"[{self.naming.key_text(name)}]" if type(holder) is dict else f".{name}"
            for holder, name in zip(path, names)  # noqa: B905 (guest code for Python 3.8+)
        ]
        result = self.naming.describe(kind, path, modules, frames, mode, edges)
        ids = [id(o) for o in path]
        keep = dict(zip(ids, path))  # noqa: B905 (guest code for Python 3.8+)
        down = dict(zip(ids, [*ids[1:], None]))  # noqa: B905
        result["dot"] = self.naming.graph(keep, down, ids, ids, modules)
        keep.clear()
        path.clear()
        return result

    @staticmethod
    def _follow(root, names):
        path = [root]
        for name in names:
            holder = path[-1]
            naming = sys.modules.get("_leakbench_backrefs_naming")
            try:
                if type(holder) is not dict:
                    holder = (
                        naming.class_dict(holder) if issubclass(type(holder), type) else naming.instance_dict(holder)
                    )
                if type(name) is not str or holder is None or name not in holder:
                    return None
                path.append(holder[name])
            except Exception:  # gone since: the root no longer holds it
                return None
        return path

    def _user_frame(self, found, frames):
        kind, obj = found
        if kind != "frame-local":
            return True
        return frames["locals"][id(obj)][3]

    def _is_own(self, obj):
        tp = type(obj)
        if tp is types.FrameType:
            return self.agent.is_own_file(obj.f_code.co_filename)
        if self.naming.type_module(tp).startswith("_leakbench"):
            return True
        if tp is dict:
            name = obj.get("__name__")
            return type(name) is str and name.startswith("_leakbench")
        if tp is types.FunctionType:
            return self.agent.is_own_file(obj.__code__.co_filename)
        return tp is types.MethodType and self.naming.type_module(type(obj.__self__)).startswith("_leakbench")

    def _unreached(self, samples, keep, exhausted, mode):
        """No root within reach: a reference cycle the collector has not freed, or a native reference."""
        sample = samples[0]
        name = self.naming.type_key(type(sample))
        if not exhausted:
            return {
                "status": "deep",
                "root": {"kind": "deep", "words": f"no root within {self.max_depth} references"},
                "chain": [f"({name} at more than {self.max_depth} references from any root)"],
                "steps": [],
            }
        cycle = self._cycle(sample, keep)
        in_garbage = any(o is sample for o in gc.garbage)
        # inside the agent's fence the collector is paused by the agent: what counts is how the target had it
        enabled = self.agent.gc_was_enabled if self.tuples else gc.isenabled()
        if cycle:
            if in_garbage:
                why = "in gc.garbage: the collector found them but could not free them"
            elif not enabled:
                why = "gc is disabled (gc.disable()), so the collector never frees them"
            else:
                why = f"the collector is enabled (thresholds {gc.get_threshold()}) but has not freed them yet"
            steps = self.naming.path_steps(cycle)
            cycle_ids = [id(o) for o in cycle]
            chain = [f"reference cycle of {len(steps)} objects ({name})"]
            chain += [f"{s['edge']} ({s['type']})" for s in steps]
            chain[-1] += " — back to the first"
            return {
                "status": "cycle",
                "root": {
                    "kind": "cycle",
                    "words": f"nothing: garbage in reference cycles; {why}",
                    "gc_enabled": enabled,
                    "in_gc_garbage": in_garbage,
                },
                "chain": chain,
                "steps": steps,
                "_path": cycle_ids,
            }
        return {
            "status": "native",
            "root": {
                "kind": "native",
                "words": "no Python object refers to it: native code, or a running function's evaluation stack",
            },
            "chain": [f"(native code) → {name}"],
            "steps": [],
        }

    def _cycle(self, start, keep):
        """A shortest path of references from `start` back to itself, through objects found on the way up."""
        allowed = set(keep)
        sid = id(start)
        back = {sid: None}
        objs = {sid: start}
        frontier = [start]
        seen = 0
        while frontier:
            nxt = []
            for o in frontier:
                refs = gc.get_referents(o)
                seen += len(refs)
                if seen > CYCLE_REFERENTS or self.over():
                    return []  # a big container: its own cycle, if any, is not worth the pause
                for k in refs:
                    if id(k) == sid:
                        path = [k]
                        cur = o
                        while cur is not None:
                            path.append(cur)
                            prev = back[id(cur)]
                            cur = objs[prev] if prev is not None else None
                        path.reverse()  # start ... o, start
                        return [start, *path[1:-1], start] if path[0] is start else path
                    if id(k) in allowed and id(k) not in back:
                        back[id(k)] = id(o)
                        objs[id(k)] = k
                        nxt.append(k)
            frontier = nxt
        return []
