"""Objects that grow in size, not in count: an array replaced by a bigger one, a buffer extended in place.

Counting objects per type says nothing when a program keeps one numpy array (or bytes, str, bytearray, list)
and makes it bigger at every call. Two signals find such objects among the values that roots hold directly
(globals of the program's own modules, attributes of its classes, locals of its running functions, and the
attributes or small-dict entries one step further down):

- a slot whose value keeps getting bigger: the same name holds a larger object at most checkpoints
  (sys.getsizeof, only where the size is computed in C, so no code of the target ever runs);
- with tracemalloc running (the tracemalloc stage shares the run), the program's own lines whose live size
  grew at most checkpoints, each allocation attributed to the deepest frame in the program's code as the
  tracemalloc stage does; an object that tracemalloc says was allocated on such a line is a candidate,
  also among the newest elements of the growing containers.

Between checkpoints only sizes and names are kept, never the target's objects. Loaded by the backrefs
probe under a private module name; stdlib only.
"""

from __future__ import annotations

import sys
import types
from bisect import bisect_left
from operator import itemgetter
from time import perf_counter

try:
    import tracemalloc
except ImportError:  # pragma: no cover - a Python built without it
    tracemalloc = None

BIG_BLOCK = 8 * 1024  # the blocks tracemalloc traced that are looked at for growth per line
MIN_BYTES = 64 * 1024  # an object (or a line) must have grown by this much to be followed
MIN_RISES = 2  # ... in at least this many intervals, and in most of the intervals since it was first seen
MAX_SLOTS = 20000  # values looked at per checkpoint, at most
SCAN_SHARE = 10  # the traces are read at most once per this many times what reading them cost
# Reading the traces is one C call that cannot be cut short: once a reading would pause the target longer
# than this (millions of traces; foreseen from the last reading's cost and the memory tracemalloc's tables
# have grown to since), they are not read again in this process. The lines that grow are still the
# tracemalloc stage's finding; the watch of the roots' slots goes on.
MAX_SCAN_PAUSE_S = 1.0
SMALL_DICT = 64  # dicts held by a root are looked into when they are no bigger than this
PER_TYPE = 5  # objects of one type handed to the chain search
IMPORTING = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
SKIPPED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, property)
CO_OPTIMIZED = 1
_SIZE = itemgetter(1)


class History:
    """One slot's (or one line's) size over the checkpoints since it was first seen."""

    __slots__ = ("first", "last", "rises", "seen_at")

    def __init__(self, size, now):
        self.first = size
        self.last = size
        self.rises = 0
        self.seen_at = now

    def update(self, size):
        if size > self.last:
            self.rises += 1
        self.last = size

    def growth(self, now):
        """Bytes gained since first seen, when it grew steadily; 0 otherwise."""
        grown = self.last - self.first
        intervals = max(now - self.seen_at, 1)
        if grown < MIN_BYTES or self.rises < MIN_RISES or 2 * self.rises < intervals:
            return 0
        return grown


class SizeWatch:
    def __init__(self, agent, library, scan_every, naming):
        self.naming = naming  # reads the target's objects without running its code
        self.agent = agent
        self.library = library
        self.scan_every = scan_every
        self._user_files = {}
        self._sites_of = {}  # raw traceback -> its site (or None): tracebacks repeat from one checkpoint to the next
        self.reset()

    def reset(self):
        self.checks = 0
        self.slots = {}  # slot key (names and ids only) -> History of its value's size
        self.sites = {}  # (file, line) -> History of the live bytes allocated there, one point per scan
        self.scans = 0
        self.next_scan_at = 0.0
        self.scan_cost_s = 0.0  # what the latest checkpoint spent reading tracemalloc's traces
        self.scans_stopped = False  # a reading would cost more than MAX_SCAN_PAUSE_S: no more of them
        self.scan_tables = 0  # the size of tracemalloc's tables at the latest reading
        self.last_scan_s = 0.0  # what it cost

    # -- where things are -------------------------------------------------------------------------------
    def is_user_file(self, filename):
        known = self._user_files.get(filename)
        if known is None:
            known = not (
                filename.startswith("<")
                or filename.startswith(self.library)
                or (self.agent.is_own_file(filename) and filename != self.agent.launch_file)
                or filename.endswith("runpy.py")
                or filename == self.agent.launch_file
            )
            self._user_files[filename] = known
        return known

    def site_of(self, frames):
        """The deepest frame in the program's own code of a raw traceback (newest first), as analysis does.

        None for the agent's own allocations, for what a module made while it was imported, and for
        allocations with no frame of the program's code on their traceback.
        """
        launch = self.agent.launch_file
        for filename, _ in frames:
            if filename in IMPORTING or (filename != launch and self.agent.is_own_file(filename)):
                return None
        for filename, line in frames:
            if self.is_user_file(filename):
                return (filename, line)
        return None

    def object_site(self, obj):
        if tracemalloc is None or not tracemalloc.is_tracing():
            return None
        raw = getattr(tracemalloc, "_get_object_traceback", None)
        try:
            if raw is not None:
                frames = raw(obj)  # newest first
            else:  # pragma: no cover - the public API, oldest first
                tb = tracemalloc.get_object_traceback(obj)
                frames = [(f.filename, f.lineno) for f in reversed(tb)] if tb is not None else None
        except Exception:
            return None
        return self.site_of(frames) if frames else None

    # -- the values roots hold ----------------------------------------------------------------------------
    def slots_now(self):
        """(key, value, path) for what roots hold directly, and one step further down.

        Keys hold no target object; the path (root holder first, the value last) is for this checkpoint only.
        """
        out = []
        naming = self.naming
        for name, module in list(sys.modules.items()):
            d = naming.module_dict(module)
            if d is None or type(name) is not str or name.startswith("_leakbench"):
                continue
            filename = d.get("__file__")
            if type(filename) is not str or not self.is_user_file(filename):
                continue
            for attr, value in list(d.items()):
                if type(attr) is not str or attr.startswith("__"):
                    continue
                if issubclass(type(value), type):
                    if naming.type_module(value) == name:
                        for cattr, cvalue in list(naming.class_dict(value).items()):
                            if type(cattr) is str and not cattr.startswith("__") and not naming.is_a(cvalue, SKIPPED):
                                self._add(out, ("c", name, naming.type_qualname(value), cattr), (value, cvalue))
                    continue
                if not naming.is_a(value, SKIPPED):
                    self._add(out, ("m", name, attr), (d, value))
            if len(out) >= MAX_SLOTS:
                return out[:MAX_SLOTS]
        current = sys._getframe().f_code
        for tid, top in sys._current_frames().items():
            f = top
            while f is not None:
                code = f.f_code
                if code is not current and code.co_flags & CO_OPTIMIZED and self.is_user_file(code.co_filename):
                    where = (tid, code.co_filename, code.co_firstlineno, code.co_name)
                    for var, value in list(f.f_locals.items()):
                        if not var.startswith(".") and not self.naming.is_a(
                            value, SKIPPED
                        ):  # `.0`: a genexpr's iterator
                            self._add(out, ("f", *where, var), (value,))
                f = f.f_back
            del f
        del top
        return out[:MAX_SLOTS]

    def _add(self, out, key, path):
        value = path[-1]
        out.append((key, value, path))
        inner = None
        if type(value) is dict and len(value) <= SMALL_DICT:
            inner = value
        elif self._is_user_instance(value):
            inner = self.naming.instance_dict(value)
        if inner:
            for k, v in list(inner.items()):
                if type(k) is str and not self.naming.is_a(v, SKIPPED):
                    out.append(((*key, k), v, (*path, v)))

    def _is_user_instance(self, value):
        d = self.naming.module_dict(sys.modules.get(self.naming.type_module(type(value))))
        filename = d.get("__file__") if d is not None else None
        return type(filename) is str and self.is_user_file(filename)

    # -- each checkpoint ----------------------------------------------------------------------------------
    def observe(self, skip_ids):
        """Sizes of the slots' values at one checkpoint; the live bytes per line of the program's code at
        some of them (reading the traces costs as much as a tracemalloc snapshot)."""
        clock = perf_counter()
        self.scan_cost_s = 0.0
        self.checks += 1
        now = self.checks
        seen = set()
        for key, value, _ in self.slots_now():
            if id(value) in skip_ids:
                continue
            size = c_size(value)
            if size is None:
                continue
            seen.add(key)
            history = self.slots.get(key)
            if history is None:
                self.slots[key] = History(size, now)
            else:
                history.update(size)
        for key in [k for k in self.slots if k not in seen]:
            del self.slots[key]
        if clock >= self.next_scan_at and not self.scans_stopped and self._scan_fits():
            began = clock
            sites = self._site_sizes()
            if sites is not None:
                self.scans += 1
                for site, size in sites.items():
                    history = self.sites.get(site)
                    if history is None:
                        self.sites[site] = History(size, self.scans)
                    else:
                        history.update(size)
                for site, history in self.sites.items():
                    if site not in sites:
                        history.update(0)
                del sites
                # Reading every trace costs as much as a tracemalloc snapshot: at most a tenth of the run.
                self.scan_cost_s = perf_counter() - began
                self.scans_stopped = self.scan_cost_s > MAX_SCAN_PAUSE_S
                self.last_scan_s = self.scan_cost_s
                self.next_scan_at = perf_counter() + max(self.scan_every, SCAN_SHARE * self.scan_cost_s)

    def _scan_fits(self):
        """Whether reading the traces now would pause the target less than MAX_SCAN_PAUSE_S: the cost is
        proportional to the traces, and so is the memory of tracemalloc's tables."""
        if tracemalloc is None or not tracemalloc.is_tracing():
            return True
        tables = tracemalloc.get_tracemalloc_memory()
        last, self.scan_tables = self.scan_tables, tables
        if last and self.last_scan_s * tables / last > MAX_SCAN_PAUSE_S:
            self.scans_stopped = True
            return False
        return True

    def _site_sizes(self):
        """Live bytes per line of the program's code, from the blocks of at least BIG_BLOCK bytes.

        What grows in size rather than in count lives in big blocks (an array's data, a long bytes or str,
        a list's table of pointers); leaving out the small ones makes this a few C-level passes and a
        Python loop over a small part of the heap. Many small objects are the count watch's job.
        """
        if tracemalloc is None or not tracemalloc.is_tracing():
            return None
        get = getattr(tracemalloc, "_get_traces", None)
        raw = get() if get is not None else tracemalloc.take_snapshot().traces._traces
        raw.sort(key=_SIZE)
        first = bisect_left(list(map(_SIZE, raw)), BIG_BLOCK)
        out = {}
        sites = self._sites_of
        if len(sites) > 100000:
            sites.clear()
        for i in range(first, len(raw)):
            trace = raw[i]
            frames = trace[2]
            site = sites.get(frames, False)  # equal tracebacks: one attribution for the whole run
            if site is False:
                site = sites[frames] = self.site_of(frames)
            if site is not None:
                out[site] = out.get(site, 0) + trace[1]
        del raw
        return out

    # -- when the probe follows what grew -----------------------------------------------------------------
    def grown(self, holders, elements_of, skip_ids, type_key):
        """[(type key, [objects], bytes grown, how, path)] for the objects that grew in size, most bytes first.

        `holders` are the growing containers: their newest elements are looked at too (by line only). The
        path (the slot's kind, then its holders from the root down to the first object) names the root when
        the search cannot: a dict that holds only untracked values is invisible to gc.get_referrers.
        """
        now = self.checks
        lines = {site: h.growth(self.scans) for site, h in self.sites.items()}
        lines = {site: g for site, g in lines.items() if g}
        found = {}  # type key -> [objects, bytes, how]
        for key, value, path in self.slots_now():
            if id(value) in skip_ids:
                continue
            history = self.slots.get(key)
            grown = history.growth(now) if history is not None else 0
            how = "size"
            if not grown and lines and (c_size(value) or 0) >= BIG_BLOCK:
                # made on a line that keeps growing, and big itself: not an iterator that line made on the way
                site = self.object_site(value)
                grown = lines.get(site, 0) if site else 0
                how = "line"
            if grown:
                names = key[2:] if key[0] == "m" else key[3:] if key[0] == "c" else key[5:]
                self._keep(found, type_key(type(value)), value, grown, how, (key[0], names, *path))
        if lines:
            for holder in holders:
                for value in elements_of(holder):
                    if (c_size(value) or 0) < BIG_BLOCK:
                        continue
                    site = self.object_site(value)
                    if site in lines:
                        self._keep(found, type_key(type(value)), value, lines[site], "line", None)
        out = [(key, *entry) for key, entry in found.items()]
        found.clear()
        out.sort(key=lambda e: e[2], reverse=True)
        return out

    @staticmethod
    def _keep(found, key, value, grown, how, path):
        entry = found.get(key)
        if entry is None:
            found[key] = [[value], grown, how, path]
            return
        if len(entry[0]) < PER_TYPE and not any(v is value for v in entry[0]):
            entry[0].append(value)
        if grown > entry[1]:
            entry[1] = grown
            entry[2] = how
        if entry[3] is None and path is not None and entry[0][0] is value:
            entry[3] = path


def c_size(value):
    """sys.getsizeof when the type computes it in C; None when it would run the target's Python code."""
    return sys.modules["_leakbench_backrefs_naming"].c_size(value)
