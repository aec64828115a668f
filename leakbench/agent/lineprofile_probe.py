"""Probe: memory_profiler's line-by-line table for one function, recorded only while that function runs.

The function is found without touching the target's source: a `sys.monitoring` PY_START callback (3.12+;
`sys.settrace` on 3.11 or when LEAKBENCH_LINE_TRACER=settrace) looks at each new frame's code object (a cheap
name comparison first; under sys.monitoring a code that does not match is never called back for again) and
adopts the one whose qualified name and file (or module) match, together with the code objects nested in it
(comprehensions, lambdas, inner functions), as memory_profiler's CodeMap does. Functions defined in `__main__`
are found the same way, once the script runs.

Only frames of that code get line events. Between two consecutive events the memory reading moves by what
the line that just ran allocated and freed, callees included; that difference is charged to the line, so the
increments of a table add up to what the calls kept (memory_profiler compares with the largest reading ever
seen at the previous line instead, which misplaces increments once memory goes down). A recursive call's
own lines are charged to themselves, not again to the line that made the call.

Readings: `tracemalloc` (the traced Python heap, numpy's buffers included; exact, unaffected by the
allocator's reuse of pages) or `psutil` (RSS, as psutil reports it, read from /proc; also sees memory that C code
allocates behind Python's back, but moves only when pages are touched or returned, so small allocations land
on whichever line touches a new page).

After `calls` completed calls of the function (outermost calls: a recursion counts once) the probe writes the
table and, in the target's main thread, ends the process at once (Agent.end_process: none of the target's
code runs after that, so no exception travels through it: an asyncio task would log a SystemExit raised in it
as the program's own error); from another thread it asks the launcher to stop it. When the launcher stops the
target first (the budget), the probe writes what it has and the launcher's stop ends the target.

Stdlib only at import; memory_profiler is loaded from the path the launcher passes (a private module name,
so the target's own copy, if any, is left alone).
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import opcode
import os
import sys
import threading
import types

YIELD_VALUE = opcode.opmap.get("YIELD_VALUE", -1)
RESUME = opcode.opmap.get("RESUME", -1)
SUSPENDING = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
MIB = float(1 << 20)


def _rss_reader():
    """The process's resident set size in bytes, from /proc/self/statm (what psutil reports, without needing
    psutil in the target's environment). Opened once; reopened in a forked child (after_fork)."""
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)

    def read():
        return int(os.pread(fd, 128, 0).split()[1]) * page

    read.close = lambda: os.close(fd)
    return read


class _MemoryInfo(tuple):
    rss = property(lambda self: self[0])
    vms = property(lambda self: self[1])


def _psutil_stand_in():
    """What memory_profiler needs of psutil at import and for rendering a table, from /proc: memory_profiler
    imports psutil at its top, and the target's environment need not have it (nor is it imported from there)."""
    module = types.ModuleType("_leakbench_psutil")

    class NoSuchProcess(Exception):
        pass

    class AccessDenied(Exception):
        pass

    class Process:
        def __init__(self, pid=None):
            self.pid = os.getpid() if pid is None else pid

        def memory_info(self):
            with open(f"/proc/{self.pid}/statm", "rb") as handle:
                fields = handle.read().split()
            page = os.sysconf("SC_PAGE_SIZE")
            return _MemoryInfo((int(fields[1]) * page, int(fields[0]) * page))

        def children(self, recursive=False):
            return []

    module.NoSuchProcess, module.AccessDenied, module.Process = NoSuchProcess, AccessDenied, Process
    return module


def _load_memory_profiler(path):
    """memory_profiler from leakbench's environment, under a private name, its `import psutil` answered by a
    stand-in: nothing is imported from the target's environment but the standard library."""
    spec = importlib.util.spec_from_file_location("_leakbench_memory_profiler", path)
    module = importlib.util.module_from_spec(spec)
    stand_in = _psutil_stand_in()
    real_import = builtins.__import__

    def private_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name.partition(".")[0] == "psutil":
            return stand_in
        return real_import(name, globals, locals, fromlist, level)

    module.__dict__["__builtins__"] = {**builtins.__dict__, "__import__": private_import}
    spec.loader.exec_module(module)
    return module


def _suspends(bytecode, lasti):
    """Whether a generator's, coroutine's or async generator's "return" event at `lasti` is a yield or an
    await (it will resume) rather than its end. 3.11 and 3.12 stop at the YIELD_VALUE; 3.13 at the RESUME
    after it, whose argument says why it resumes (low bits: 0 = the start, 1 yield, 2 yield from, 3 await)."""
    op = bytecode[lasti]
    return op == YIELD_VALUE or (op == RESUME and bytecode[lasti + 1] & 3 != 0)


def _nested_codes(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from _nested_codes(const)


class _Idle:
    """What start() returns when the probe cannot work: the target runs undisturbed."""


class LineProfileProbe:
    def __init__(self, agent, options):
        self.agent = agent
        self.qualname = str(options["qualname"])
        self.name = self.qualname.rpartition(".")[2]
        self.file = os.path.realpath(options["file"]) if options.get("file") else None
        self.module = options.get("module") or None
        self.calls_wanted = max(1, int(options.get("calls", 50)))
        self.follow_library = bool(options.get("follow_library", True))
        self.backend = options.get("backend", "tracemalloc")
        self.mp = _load_memory_profiler(options["memory_profiler"])
        if self.backend == "psutil":
            self.read = _rss_reader()
        else:
            import tracemalloc

            if not tracemalloc.is_tracing():
                tracemalloc.start(1)
            traced = tracemalloc.get_traced_memory
            self.read = lambda: traced()[0]
        self._lock = threading.Lock()
        self._reset()
        self.active = True
        self.tool = None  # the sys.monitoring tool id in use (3.12+), or None under sys.settrace
        self._start_tracing(os.environ.get("LEAKBENCH_LINE_TRACER", "auto"))

    def _reset(self):
        self.codes = {}  # code object -> the adopted top-level code it belongs to
        self.tables = {}  # top-level code -> {line: [increment, max reading, occurrences]}
        self.callers = {}  # a library function's code -> the user's code profiled in its place
        self.saved = {}  # profiled frame -> the row that was running when it was entered
        self.current = None  # the row of the line running now, or None outside the function
        self.last = 0
        self.depth = 0
        self.started = 0
        self.completed = 0
        self.thread = None
        self.written = False
        self._real = {}
        self._library = None

    # -- finding the function --------------------------------------------------------------------------
    def _realpath(self, filename):
        found = self._real.get(filename)
        if found is None:
            found = self._real[filename] = os.path.realpath(filename)
        return found

    def _matches(self, frame):
        code = frame.f_code
        qualname = getattr(code, "co_qualname", None)  # Python 3.11+; older ones compare the name only
        if qualname is not None and qualname != self.qualname:
            return False
        if self.file and self._realpath(code.co_filename) == self.file:
            return True
        if self.module and frame.f_globals.get("__name__") == self.module:
            return True
        return not self.file and not self.module

    def _is_library(self, filename):
        if self._library is None:
            import sysconfig

            paths = sysconfig.get_paths()
            found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
            self._library = tuple(os.path.realpath(p) + os.sep for p in found)
        return filename.startswith("<") or self._realpath(filename).startswith(self._library)

    def _adopt(self, code, via=None):
        for sub in _nested_codes(code):
            self.codes.setdefault(sub, code)
            self._instrument(sub)
        self.tables[code] = {}
        self.agent.emit(
            "line-profile-found",
            file=code.co_filename,
            line=code.co_firstlineno,
            qualname=getattr(code, "co_qualname", code.co_name),
            via=via,
        )

    def _user_caller(self, frame):
        """The innermost frame of the target's own code below a library function's frame."""
        caller = frame.f_back
        while caller is not None:
            filename = caller.f_code.co_filename
            if not self._is_library(filename) and not self.agent.is_own_file(filename):
                return caller
            caller = caller.f_back
        return None

    # -- tracing: sys.monitoring (3.12+) or sys.settrace ---------------------------------------------------
    def _start_tracing(self, mode):
        """sys.monitoring where the interpreter has it (and a tool id is free): a function that does not match
        costs one callback at its first call and nothing after (DISABLE), where sys.settrace calls back on
        every call of every function (bench/lineprofile_tracers.py measures the difference)."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None and mode != "settrace":
            # ids 3 and 4 have no assigned role: the target's own debugger, coverage or profiler (cProfile
            # takes PROFILER_ID on 3.12+) must still find theirs free
            free = [t for t in (4, 3) if monitoring.get_tool(t) is None]
            if free:
                self.tool = tool = free[0]
                events = monitoring.events
                monitoring.use_tool_id(tool, "leakbench line_profile")
                monitoring.register_callback(tool, events.PY_START, self._m_start)
                monitoring.register_callback(tool, events.PY_RESUME, self._m_resume)
                monitoring.register_callback(tool, events.LINE, self._m_line)
                monitoring.register_callback(tool, events.PY_RETURN, self._m_return)
                monitoring.register_callback(tool, events.PY_YIELD, self._m_yield)
                monitoring.register_callback(tool, events.PY_UNWIND, self._m_unwind)
                monitoring.set_events(tool, events.PY_START | events.PY_UNWIND)
                return
        if mode == "monitoring":
            raise RuntimeError("sys.monitoring is not available here (Python 3.12+, a free tool id)")
        sys.settrace(self._global)
        threading.settrace(self._global)

    def _stop_tracing(self):
        tool, self.tool = self.tool, None
        if tool is None:
            sys.settrace(None)
            threading.settrace(None)
            return
        monitoring = sys.monitoring
        monitoring.set_events(tool, 0)
        for code in list(self.codes):
            monitoring.set_local_events(tool, code, 0)
        monitoring.free_tool_id(tool)

    def _instrument(self, code):
        """Under sys.monitoring: line, return, yield and resume events for an adopted code object only."""
        if self.tool is not None:
            events = sys.monitoring.events
            wanted = events.LINE | events.PY_RETURN | events.PY_YIELD | events.PY_RESUME
            sys.monitoring.set_local_events(self.tool, code, wanted)

    def _m_start(self, code, offset):
        try:
            if not self.active:
                return sys.monitoring.DISABLE  # the table is written: the rest of the run goes untraced
            top = self.codes.get(code)
            if top is None:
                if code.co_name != self.name or code in self.callers:
                    return sys.monitoring.DISABLE  # never this code: no more callbacks for it
                frame = sys._getframe(1)
                if not self._matches(frame):
                    return sys.monitoring.DISABLE
                if self.thread is not None and threading.get_ident() != self.thread:
                    return None
                if self.follow_library and self._is_library(code.co_filename):
                    self._follow_caller(frame, code)
                    return sys.monitoring.DISABLE
                self._adopt(code)
                top = code
            if self.thread is None:
                self.thread = threading.get_ident()
            elif threading.get_ident() != self.thread:
                return None
            self._enter(sys._getframe(1), code is top)
        except Exception as exc:
            self._failed(exc)
        return None

    def _m_resume(self, code, offset):
        try:
            top = self.codes.get(code)
            if self.active and top is not None and threading.get_ident() == self.thread:
                self._enter(sys._getframe(1), code is top)
        except Exception as exc:
            self._failed(exc)

    def _m_line(self, code, line):
        try:
            if self.active and code in self.codes and threading.get_ident() == self.thread:
                self._charge(self.read())
                self.current = self._row(code, line)
        except Exception as exc:
            self._failed(exc)

    def _m_leave(self, code, suspended):
        try:
            if self.active and code in self.codes and threading.get_ident() == self.thread:
                self._leave(sys._getframe(2), code, suspended)
        except Exception as exc:
            self._failed(exc)

    def _m_return(self, code, offset, value):
        self._m_leave(code, False)

    def _m_yield(self, code, offset, value):
        self._m_leave(code, True)

    def _m_unwind(self, code, offset, exc):
        if code in self.codes:  # a global event: only the adopted code's are ours
            self._m_leave(code, False)

    def _global(self, frame, event, arg):
        try:
            if not self.active:
                return None
            code = frame.f_code
            top = self.codes.get(code)
            if top is None:
                if code.co_name != self.name or code in self.callers or not self._matches(frame):
                    return None
                if self.thread is not None and threading.get_ident() != self.thread:
                    return None
                if self.follow_library and self._is_library(code.co_filename):
                    return self._follow_caller(frame, code)
                self._adopt(code)
                top = code
            if self.thread is None:
                self.thread = threading.get_ident()
            elif threading.get_ident() != self.thread:
                return None  # one thread only: two threads' lines interleaved would be charged to each other
            self._enter(frame, code is top)
            return self._local
        except Exception as exc:
            self._failed(exc)
            return None

    def _follow_caller(self, frame, code):
        """The named function is library code: profile the target's own function that calls it."""
        caller = self._user_caller(frame)
        self.callers[code] = caller.f_code if caller is not None else None
        if caller is None or caller.f_code in self.codes:
            return None
        self._adopt(caller.f_code, via=getattr(code, "co_qualname", code.co_name))
        self.thread = threading.get_ident()
        # The caller is running already: it gets line events from now on, and counts as entered.
        self.saved[caller] = None
        self.depth += 1
        self.started += 1
        self.last = self.read()
        self.current = self._row(caller.f_code, caller.f_lineno)
        if self.tool is None:
            caller.f_trace = self._local
        return None

    def _row(self, code, line):
        top = self.codes.get(code)
        if top is None:  # a frame entered before a fork, in a worker that starts afresh
            return None
        row = self.tables[top].get(line)
        if row is None:
            row = self.tables[top][line] = [0, 0, 0]
        row[2] += 1
        return row

    def _charge(self, now):
        row = self.current
        if row is not None:
            row[0] += now - self.last
            if now > row[1]:
                row[1] = now
        self.last = now

    def _enter(self, frame, outermost_code):
        self._charge(self.read())
        self.saved[frame] = self.current
        self.current = self._row(frame.f_code, frame.f_lineno)
        if outermost_code:
            if self.depth == 0:
                self.started += 1
            self.depth += 1

    def _local(self, frame, event, arg):
        try:
            if not self.active:
                return None
            if event == "line":
                self._charge(self.read())
                self.current = self._row(frame.f_code, frame.f_lineno)
            elif event == "return":
                code = frame.f_code
                self._leave(frame, code, code.co_flags & SUSPENDING and _suspends(code.co_code, frame.f_lasti))
            return self._local
        except Exception as exc:
            self._failed(exc)
            return None

    def _leave(self, frame, code, suspended):
        """A frame of the function's code returns, or suspends at a yield or an await (`suspended`)."""
        self._charge(self.read())
        self.current = self.saved.pop(frame, None)
        if self.codes.get(code) is code:
            self.depth = max(0, self.depth - 1)
            if self.depth == 0 and not suspended:
                self.completed += 1
                if self.completed >= self.calls_wanted:
                    self._done()

    def _done(self):
        self.active = False
        self._stop_tracing()
        self.write("calls")
        if self.agent.role == "main" and threading.current_thread() is threading.main_thread():
            self.agent.end_process("line-profile-calls")
        # In another thread (or a worker process) the launcher's policy stops the target.

    def _failed(self, exc):
        self.active = False
        if self.tool is not None:
            with contextlib.suppress(Exception):
                self._stop_tracing()
        self.agent.emit("probe-error", probe="line_profile", method="trace", error=f"{type(exc).__name__}: {exc}")

    # -- results ---------------------------------------------------------------------------------------
    def write(self, reason):
        with self._lock:
            if self.written:
                return
            self.written = True
        self.active = False
        if self.current is not None:
            self._charge(self.read())  # the line still running when the target was stopped
        functions = []
        for code, table in list(self.tables.items()):
            rows = sorted([line, row[0], row[1], row[2]] for line, row in list(table.items()))
            functions.append(
                {
                    "file": code.co_filename,
                    "line": code.co_firstlineno,
                    "qualname": getattr(code, "co_qualname", code.co_name),
                    "rows": rows,
                }
            )
        text_path = os.path.join(self.agent.artifact_dir(), "memory_profiler.txt")
        text_error = self._memory_profiler_text(text_path)
        self.agent.emit(
            "line-profile",
            reason=reason,
            backend=self.backend,
            calls_wanted=self.calls_wanted,
            calls_started=self.started,
            calls_completed=self.completed,
            functions=functions,
            text=text_path if text_error is None else None,
            text_error=text_error,
            done=reason == "calls",
        )

    def _memory_profiler_text(self, path):
        """memory_profiler's own rendering of the table (MiB, three decimals), beside the raw numbers."""
        try:
            prof = self.mp.LineProfiler(backend="psutil" if self.backend == "psutil" else "tracemalloc")
            for code, table in list(self.tables.items()):
                if not os.path.exists(code.co_filename):
                    continue
                prof.code_map.add(code)
                measures = prof.code_map[code]
                for line, row in list(table.items()):
                    measures[line] = (row[0] / MIB, row[1] / MIB, row[2])
            stream = io.StringIO()
            stream.write(f"Backend: {self.backend}; {self.completed} completed call(s)\n")
            self.mp.show_results(prof, stream=stream, precision=3)
            with open(path, "w") as handle:
                handle.write(stream.getvalue())
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    # -- agent hooks -----------------------------------------------------------------------------------
    def target_end(self):
        self.write("target-end")

    def final(self, reason):
        self.write("exit" if reason == "exit" else "budget")

    def after_fork(self):
        # A worker process profiles its own calls from zero, in the thread that forked.
        if self.backend == "psutil":
            self.read.close()  # the parent's /proc/<pid>/statm
            self.read = _rss_reader()
        self._reset()
        self.active = True


def start(agent, options):
    try:
        return LineProfileProbe(agent, options)
    except Exception as exc:  # memory_profiler unreadable by the target's interpreter, or a bad option
        agent.emit("line-profile-unavailable", error=f"{type(exc).__name__}: {exc}")
        return _Idle()
