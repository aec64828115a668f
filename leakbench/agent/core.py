"""The agent's core: the channel to the launcher, the probes, the ticker thread, and fork handling.

Loaded by bootstrap.py under a private module name; imports only the standard library.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import sys
import threading
import time

AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
TICK_S = 0.1


class Agent:
    """What the probes see: the channel, the artifact folder, the clock, and this process's identity."""

    def __init__(self, config, role="main"):
        self.config = config
        self.channel_dir = config["channel"]
        self.role = role
        self.pid = os.getpid()
        self.probes = []
        self._fd = -1
        self._lock = threading.Lock()
        self._probe_lock = threading.RLock()
        self._stop_path = os.path.join(self.channel_dir, "stop")
        self._stopping = False
        self._finished = False
        self._ticker = None
        self.own_prefixes = (AGENT_DIR + os.sep,)
        self.launch_file = ""  # the script that runs the target: its frames sit under the target's
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
            if not self._stopping and os.path.exists(self._stop_path):
                self._stopping = True
                self.finish("stop-requested")
                return
            # Imports are the target's warm-up: the launcher's trend analysis starts after the last one.
            if len(sys.modules) != modules:
                modules = len(sys.modules)
                self.emit("modules", count=modules)
            self._call("tick", time.time())

    def target_ended(self):
        self._call("target_end")

    def finish(self, reason):
        """Take the probes' last readings once; called at exit or when the launcher asks to stop."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._call("final", reason)
        self.emit("final", reason=reason)

    def after_fork_in_child(self):
        self.pid = os.getpid()
        self.role = "child"
        self._lock = threading.Lock()
        self._probe_lock = threading.RLock()
        self._finished = False
        self._stopping = False
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
            argv=list(sys.argv),
            cwd=os.getcwd(),
            library_paths=library,
            agent_dir=AGENT_DIR + os.sep,
            launch_file=self.launch_file,
        )


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
