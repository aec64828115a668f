"""Starts leakbench's agent in every Python process the target starts afresh: multiprocessing's `spawn` and
`forkserver` workers (and the fork server itself), and any `python ...` the target runs. The launcher puts
this folder first on PYTHONPATH, which only a Python interpreter reads: other programs run untouched.

The process that bootstrap.py starts is left to it. The folder is taken off sys.path again, and a
sitecustomize of the target's own environment, if there is one, runs after this one as it would have.
Written for any interpreter that may read PYTHONPATH: a Python 2 or an old Python 3 does nothing here.
"""

import contextlib
import os
import sys


def _start_agent():
    config_path = os.environ.get("LEAKBENCH_AGENT_CONFIG")
    if not config_path or sys.version_info < (3, 8):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    agent_dir = os.path.dirname(here)
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 and os.path.realpath(argv0) == os.path.join(os.path.realpath(agent_dir), "bootstrap.py"):
        return  # the target's main process: bootstrap.py starts the agent itself
    import atexit
    import importlib.util
    import json

    with open(config_path) as handle:
        config = json.load(handle)
    spec = importlib.util.spec_from_file_location("_leakbench_agent_core", os.path.join(agent_dir, "core.py"))
    core = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = core
    spec.loader.exec_module(core)
    agent = core.Agent(config, role="child")
    agent.hello()
    agent.load_probes()
    os.register_at_fork(after_in_child=agent.after_fork_in_child)
    atexit.register(agent.finish, "exit")
    agent.start_ticker()


def _run_next_sitecustomize(here):
    """The target environment's own sitecustomize, found on the rest of sys.path, run as Python would."""
    import importlib.machinery
    import importlib.util

    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _main():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        _start_agent()
    except Exception as exc:  # never break the target's child over the agent
        with contextlib.suppress(Exception):
            # no f-string: a Python 2 reading PYTHONPATH must still be able to compile this file
            why = "{}: {}".format(type(exc).__name__, exc)  # noqa: UP032
            sys.stderr.write("leakbench: agent not started in pid " + str(os.getpid()) + ": " + why + "\n")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    _run_next_sitecustomize(here)


_main()
