"""Start the target as `python app.py args` would, with leakbench's probes running beside it.

Run as `python bootstrap.py (--script PATH | --module NAME) -- ARGS...`, with LEAKBENCH_AGENT_CONFIG naming
a JSON file that says where the channel is and which probes to load. The agent talks to the launcher only
through files in the channel folder (one JSON-lines file per process), never the target's stdout.

This file holds only the launch: every frame of it sits under the target's own frames, so analysis treats
it as neutral, while the agent's own work lives in core.py and the probes and is filtered out.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import sys


def _load_core():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core.py")
    spec = importlib.util.spec_from_file_location("_leakbench_agent_core", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _trim_traceback(tb):
    """Drop the agent's own frames (this file and runpy) from the front of a traceback."""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == __file__ or filename.endswith(("runpy.py", "<frozen runpy>")):
            tb = tb.tb_next
            continue
        break
    return tb


def _frames_of(tb):
    import linecache

    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        text = linecache.getline(code.co_filename, tb.tb_lineno).strip()
        frames.append([code.co_filename, tb.tb_lineno, code.co_name, text])
        tb = tb.tb_next
    return frames


def _parse_args(argv):
    mode, what = argv[1], argv[2]
    if argv[3] != "--":
        raise SystemExit(f"leakbench agent: bad arguments {argv!r}")
    return mode, what, argv[4:]


def main():
    mode, what, args = _parse_args(sys.argv)
    with open(os.environ["LEAKBENCH_AGENT_CONFIG"]) as handle:
        config = json.load(handle)
    # Children that exec another program must not inherit a config meant for this one.
    core = _load_core()
    agent = core.Agent(config)
    agent.launch_file = os.path.abspath(__file__)

    if mode == "--script":
        script = os.path.abspath(what)  # as python does for __main__ since 3.9
        sys.argv[:] = [what, *args]
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    else:
        sys.argv[:] = [what, *args]
        sys.path[0] = os.getcwd()

    agent.hello()
    agent.load_probes()
    os.register_at_fork(after_in_child=agent.after_fork_in_child)
    # Registered first, so it runs last: after the target's own atexit handlers.
    atexit.register(agent.finish, "exit")
    agent.start_ticker()
    agent.emit("target-start")

    import runpy

    try:
        try:
            if mode == "--script":
                runpy.run_path(script, run_name="__main__")
            else:
                runpy.run_module(what, run_name="__main__", alter_sys=True)
        finally:
            # What the target's functions held is released from here on: teardown, not the steady state.
            # The agent marks the moment and takes its last readings; no interval reading comes after.
            agent.target_ended()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if not agent.stop_requested:
            _report(agent, *sys.exc_info())
        # Stopped by leakbench (its SIGINT after the agent's last readings): not the program's failure, so
        # no traceback; leakbench says in one line that it stopped the target and why. Either way the
        # process ends as an interrupted Python program does, killed by SIGINT.
        agent.finish("exit")
        import signal

        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        sys.exit(1)
    except BaseException:
        _report(agent, *sys.exc_info())
        sys.exit(1)


def _report(agent, _type, exc, _tb):
    """Record the exception for the report and print it as python would."""
    tb = _trim_traceback(exc.__traceback__)
    agent.emit(
        "exception",
        type=type(exc).__name__,
        qualname=type(exc).__module__ + "." + type(exc).__qualname__,
        message=str(exc)[:2000],
        traceback=_frames_of(tb),
    )
    exc.__traceback__ = tb  # python prints from the exception's own traceback
    sys.excepthook(type(exc), exc, tb)


if __name__ == "__main__":
    main()
