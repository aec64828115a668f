"""The agent's core: the channel to the launcher, the probes, the ticker thread, and fork handling.

Loaded by bootstrap.py under a private module name; imports only the standard library.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib.util
import json
import os
import sys
import threading
import time

AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
TICK_S = 0.1
FENCE_MIN_S = 0.05  # the shortest switch interval a fence sets; longer when the scans take longer
FENCE_BACKOFF = 4  # fences not tried after one could not be set up
FENCE_ARM_S = 0.012  # spun before a fenced scan: longer than any wait a thread began with the old interval


def _has_children(pid):
    """Whether the process has started processes that still run (from /proc; True where it cannot tell).

    A target with workers gets leakbench's SIGINT, as on Ctrl-C: its pool's `with` block ends them, where
    a process ended at once would leave them writing results into a closed pipe."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # ended meanwhile, or not ours to read
        fields = stat[stat.rfind(b")") + 2 :].split()  # after the command name, which may hold spaces
        if len(fields) > 1 and fields[1] == str(pid).encode():
            return True
    return False


def _sigint_is_pythons_own():
    """Whether SIGINT would only raise KeyboardInterrupt in the target: Python's default handler, or the one
    `asyncio.run` installs (it cancels the main task, and raises KeyboardInterrupt once that has unwound).

    Then leakbench's stop ends the process from the agent, after its last readings (when it has no child
    processes: _has_children), instead of sending SIGINT: the interrupt would run the target's code for
    nothing, at an arbitrary point, and an event loop torn down there logs errors of its own ("Exception in
    callback ... InvalidStateError") as if the program had failed. A target with a handler of its own (a
    service's graceful shutdown) or that ignores SIGINT gets the signal, as on Ctrl-C, and the report says
    which signal ended it."""
    import functools
    import signal
    import types

    try:
        handler = signal.getsignal(signal.SIGINT)
    except (ValueError, OSError):
        return False
    if handler is signal.default_int_handler:
        return True
    # Looked at by type only: no attribute lookup that a target's own callable could answer.
    func = handler.func if type(handler) is functools.partial else handler
    runners = sys.modules.get("asyncio.runners")
    runner = getattr(runners, "Runner", None)
    return type(func) is types.MethodType and runner is not None and type(func.__self__) is runner


class Agent:
    """What the probes see: the channel, the artifact folder, the clock, and this process's identity."""

    def __init__(self, config, role="main", attached=False):
        self.config = config
        # Started inside a process that was already running (attach.py): it detaches at the end instead of
        # ending the process, and follows no fork (an at-fork handler cannot be taken back).
        self.attached = attached
        self.channel_dir = config["channel"]
        self.role = role
        self.pid = os.getpid()
        self.probes = []
        self._fd = -1
        self._lock = threading.Lock()
        self._probe_lock = threading.RLock()
        self._stop_path = os.path.join(self.channel_dir, "stop")
        self._stopping = False
        self.stop_reason = ""
        self._ended = False  # the target's main code has returned
        self._finished = False
        self._ticker = None
        self.own_prefixes = (AGENT_DIR + os.sep,)
        self.gc_was_enabled = True  # as the target had it when the latest fence began
        self._fence_backoff = 0
        self.launch_file = ""  # the script that runs the target: its frames sit under the target's
        # In a forked child: the stack it was forked on, newest first (the frame that called os.fork first).
        # Those frames are the parent's work; the child's own starts below the first of them.
        self.inherited = []
        self._open_channel()

    # -- channel ---------------------------------------------------------------------------------
    def _open_channel(self):
        path = os.path.join(self.channel_dir, f"{self.pid}.jsonl")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(self, kind, **fields):
        """Append one event; each line is written whole so a killed target leaves whole lines."""
        fields["event"] = kind
        fields["t"] = time.time()
        fields["pid"] = self.pid
        line = (json.dumps(fields, default=str) + "\n").encode()
        with self._lock, contextlib.suppress(OSError):
            os.write(self._fd, line)

    def artifact_dir(self):
        path = os.path.join(self.config["artifacts"], str(self.pid))
        os.makedirs(path, exist_ok=True)
        return path

    @contextlib.contextmanager
    def fence(self, expected_s=0.0):
        """Run a heap scan so that no other thread of the target runs until it is over.

        The scan takes references to the target's objects (gc.get_objects, gc.get_referrers), and one of
        them may be half built: CPython resizes a tuple made from a generator in place and refuses one that
        anything else refers to (gh-127058). So every reference the scan takes must be gone before any
        other thread runs again, and the scan must never hand the GIL over. It hands it over at a blocking
        call (none is made inside: no I/O, no lock that can be contended), when the collector runs a
        finalizer (the collector is paused), and when another thread has waited longer than the switch
        interval. A waiting thread reads the interval each time it starts to wait, so it is raised above
        what the scan will take, and spun on for longer than the old interval while no reference is held:
        every wait begun before has ended by then. Other threads may wait longer for the GIL while the
        scan runs: that is the pause the scan costs, and the caller keeps it short. No signal, no trace
        function, nothing the target can see but time.

        Yields the perf_counter() time by which the scan must be over, or None when the fence could not be
        set up (busy threads kept asking for the GIL while it was armed; then it is not tried for the next
        few scans): the caller then holds nothing that may be half built (see backrefs_probe.select). The
        caller drops every reference it took before the block ends, and writes its files after.
        """
        old = sys.getswitchinterval()
        if self._fence_backoff > 0:  # it failed lately: other threads keep asking for the GIL
            self._fence_backoff -= 1
            yield None
            return
        fence = max(FENCE_MIN_S, 2 * old, expected_s + 0.05)
        sys.setswitchinterval(fence)
        fence = sys.getswitchinterval()  # as CPython stores it (whole microseconds)
        armed_at = time.perf_counter()
        arm = max(FENCE_ARM_S, 2.5 * old)
        while time.perf_counter() < armed_at + arm:
            pass
        # A wait begun after the interval was raised ends at armed_at + fence at the earliest; one begun
        # before has ended by now. Handed over while arming and given back late: no time left, no fence.
        deadline = armed_at + fence - 0.01
        ok = deadline - time.perf_counter() >= expected_s / 2
        enabled = gc.isenabled()
        self.gc_was_enabled = enabled
        if ok:
            gc.disable()
        else:
            self._restore_interval(fence, old)
            self._fence_backoff = FENCE_BACKOFF
        try:
            yield deadline if ok else None
        finally:
            if ok:
                if enabled:
                    gc.enable()
                self._restore_interval(fence, old)

    @staticmethod
    def _restore_interval(fence, old):
        if sys.getswitchinterval() == fence:  # unless the target set its own meanwhile
            sys.setswitchinterval(old)
        # Threads that began waiting during the fence wait with its long interval: hand the GIL on a few
        # times so that they see the old one again.
        for _ in range(4):
            time.sleep(0)

    def is_own_file(self, filename):
        return filename.startswith(self.own_prefixes)

    # -- probes ----------------------------------------------------------------------------------
    def load_probes(self):
        for spec in self.config.get("probes", []):
            name = spec["name"]
            module_name = "_leakbench_probe_" + name
            loader_spec = importlib.util.spec_from_file_location(module_name, spec["path"])
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
            self.own_prefixes += (os.path.dirname(os.path.abspath(spec["path"])) + os.sep,)
            probe = module.start(self, spec.get("options", {}))
            self.probes.append((name, probe))

    def _call(self, method, *args):
        with self._probe_lock:  # the ticker and atexit may both reach here; probes see one call at a time
            self._call_unlocked(method, *args)

    def _call_unlocked(self, method, *args):
        for name, probe in list(self.probes):
            fn = getattr(probe, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as exc:  # a probe failing must never break the target
                self.emit("probe-error", probe=name, method=method, error=f"{type(exc).__name__}: {exc}")

    # -- ticking, stopping, forking --------------------------------------------------------------
    def start_ticker(self):
        self._ticker = threading.Thread(target=self._tick_loop, name="leakbench-agent", daemon=True)
        self._ticker.start()

    def _tick_loop(self):
        modules = -1
        while not self._finished:
            time.sleep(TICK_S)
            if self._finished:
                return
            if self.attached and not self._stopping and not _alive(self.config.get("launcher_pid")):
                # leakbench went away without asking (killed): leave the process as it was, at once
                self._stopping = True
                self.stop_reason = "leakbench ended"
                self.finish("launcher-gone")
                self.detach()
                return
            if not self._stopping and os.path.exists(self._stop_path):
                try:
                    with open(self._stop_path) as handle:
                        self.stop_reason = handle.read().strip() or "stop requested"
                except OSError:
                    self.stop_reason = "stop requested"
                self._stopping = True
                if self.attached:
                    self.finish("stop-requested")
                    self.detach()
                    return
                ends = self.role == "main" and _sigint_is_pythons_own() and not _has_children(self.pid)
                self.finish("stop-requested", ends=ends)
                if ends:
                    self._exit_now()
                return

            # Imports are the target's warm-up: the launcher's trend analysis starts after the last one.
            if len(sys.modules) != modules:
                modules = len(sys.modules)
                self.emit("modules", count=modules)
            with self._probe_lock:
                if self._ended:
                    continue  # the target's code has returned: nothing more is read as its behaviour
                self._call_unlocked("tick", time.time())

    def target_ended(self):
        """The target's code has returned: the probes take their last readings now (marked as such), and
        the ticker takes no more interval readings; what follows is teardown, not the target's work."""
        with self._probe_lock:  # after an interval reading in progress, before any other
            self._ended = True
            self.emit("target-end")
            self._call_unlocked("target_end")

    @property
    def stop_requested(self):
        return self._stopping

    def finish(self, reason, ends=False):
        """Take the probes' last readings once; called at exit or when the launcher asks to stop.

        `ends`: the agent ends the process itself right after (the launcher waits for that, not signalling)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        # The launcher waits while the last readings are taken (a big heap, a busy machine: seconds)
        self.emit("finishing", reason=reason)
        self._call("final", reason)
        self.emit("final", reason=reason, ends=ends)

    def detach(self):
        """Leave a process leakbench attached to as it was: the probes undo what they started (tracemalloc),
        the exit hook and the agent's modules are removed, and the ticker thread (the caller) ends."""
        self._call("detach")
        with contextlib.suppress(Exception):
            atexit.unregister(self.finish)
        self.probes = []
        for name in [n for n in sys.modules if n.startswith("_leakbench_")]:
            sys.modules.pop(name, None)
        self.emit("detached")
        with self._lock:
            fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):
            os.close(fd)

    def end_process(self, reason):
        """leakbench ends the target itself, from its main thread (the line profile has its calls).

        Raising SystemExit there would travel through the target's code: its `except BaseException`, its
        finally blocks, and asyncio, which stores it in the running task, cancels the others and logs
        "Task exception was never retrieved" with a traceback ending in the agent's own raise, as if the
        program had crashed. So the agent takes its last readings, flushes what the target printed, and the
        process ends at once with code 0, no more of the target's code run (as leakbench's SIGINT stop
        skips the target's atexit handlers). The stage says it stopped the target and why."""
        self._stopping = True
        self.stop_reason = reason
        self.finish(reason, ends=True)
        self._exit_now()

    def _exit_now(self):
        """Flush what the target printed and end the process with code 0; none of its code runs after."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)

    def after_fork_in_child(self):
        self.pid = os.getpid()
        self.role = "child"
        self.inherited = _stack_of(sys._getframe(1))
        self._lock = threading.Lock()
        self._probe_lock = threading.RLock()
        self._finished = False
        self._stopping = False
        self._ended = False
        self._open_channel()
        self.hello()
        self._call("after_fork")
        self.start_ticker()
        atexit.register(self.finish, "exit")

    def hello(self):
        import sysconfig

        paths = sysconfig.get_paths()
        library = sorted(
            {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths} | set(_site_packages())
        )
        self.emit(
            "hello",
            role=self.role,
            ppid=os.getppid(),
            python=sys.version.split()[0],
            executable=sys.executable,
            argv=list(getattr(sys, "argv", [])),
            attached=self.attached,
            cwd=os.getcwd(),
            library_paths=library,
            agent_dir=AGENT_DIR + os.sep,
            launch_file=self.launch_file,
            inherited=self.inherited,
        )


def _alive(pid):
    if not pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True
    return True


def attach(config):
    """Start the agent in this process, which was already running (see attach.py): the probes' first
    readings are taken here, in the thread that runs this; the ticker takes the others."""
    agent = Agent(config, attached=True)
    agent.hello()
    agent.load_probes()
    atexit.register(agent.finish, "exit")  # the process ending while attached: its last readings still count
    agent.start_ticker()
    agent.emit("attached")
    return agent


def _stack_of(frame):
    """[file, line] of `frame` and its callers, newest first."""
    out = []
    while frame is not None:
        out.append([frame.f_code.co_filename, frame.f_lineno])
        frame = frame.f_back
    return out


def _site_packages():
    try:
        import site

        found = list(site.getsitepackages())
        user = site.getusersitepackages()
        if isinstance(user, str):
            found.append(user)
        return found
    except Exception:
        return []
