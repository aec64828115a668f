"""Start leakbench's agent inside a Python process that is already running (`leakbench attach PID`).

leakbench has the process run this file once, in its main thread and with the GIL held: as a pending call
queued through a debugger on Python 3.11 to 3.13, or by `sys.remote_exec` on 3.14 and later. Either way the
process's own work waits while it runs, so it only sets the agent up (the probes' first readings, the ticker
thread) and returns. It never raises into the target: what goes wrong is written for the launcher to read.

The agent then works as it does in a process leakbench started, until the launcher asks it to stop: it takes
its last readings and removes itself (tracemalloc stopped if it started it, its thread ended, its modules
gone). The target is never stopped.
"""

from __future__ import annotations


def run(config_path):
    import os

    try:
        import json

        with open(config_path) as handle:
            config = json.load(handle)
        channel = config["channel"]
    except Exception:
        return  # nothing to report to: the launcher sees that the agent never said hello
    # The launcher gave up waiting for this call (the process ran no Python code for a while): too late now.
    if os.path.exists(os.path.join(channel, "cancel")):
        return
    try:
        import importlib.util
        import sys

        if "_leakbench_agent_core" in sys.modules:
            raise RuntimeError("leakbench's agent is already running in this process")
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core.py")
        spec = importlib.util.spec_from_file_location("_leakbench_agent_core", path)
        core = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = core
        try:
            spec.loader.exec_module(core)
            core.attach(config)
        except BaseException:
            for name in [n for n in sys.modules if n.startswith("_leakbench_")]:
                del sys.modules[name]
            raise
    except BaseException as exc:
        try:
            with open(os.path.join(channel, "attach-error.txt"), "w") as handle:
                handle.write(f"{type(exc).__name__}: {exc}\n")
        except OSError:
            pass


if __name__ == "_leakbench_attach":
    run(globals().get("LEAKBENCH_CONFIG", ""))
