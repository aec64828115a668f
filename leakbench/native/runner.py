"""How a target is started under the native tracker: where the built library is, and the environment
that preloads it (LD_PRELOAD plus the LEAKBENCH_* options the library reads at start-up)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from leakbench.errors import TrackerError

# option name -> (environment variable, default); the C side's table is in native_tracker/src/options.c
OPTIONS: dict[str, tuple[str, int]] = {
    "tick_ms": ("LEAKBENCH_TICK_MS", 20),
    "native_depth": ("LEAKBENCH_NATIVE_DEPTH", 64),
    "python_stacks": ("LEAKBENCH_PYTHON_STACKS", 1),
    "python_depth": ("LEAKBENCH_PYTHON_DEPTH", 128),
    "track_mmap": ("LEAKBENCH_TRACK_MMAP", 1),
    "follow_fork": ("LEAKBENCH_FOLLOW_FORK", 1),
    "all_processes": ("LEAKBENCH_ALL_PROCESSES", 0),
    "buffer_kb": ("LEAKBENCH_BUFFER_KB", 1024),
    "debug": ("LEAKBENCH_DEBUG", 0),
}


def tracker_library_path() -> Path:
    """The built tracker library inside the installed package."""
    here = Path(__file__).resolve().parent
    found = sorted(here.glob("_tracker*.so"))
    if not found:
        raise TrackerError(
            f"the native tracker is not built (no _tracker*.so in {here})",
            code="missing",
        )
    return found[0]


def preload_env(
    capture_template: str, *, base: Mapping[str, str] | None = None, **options: int | bool
) -> dict[str, str]:
    """The environment for a target whose allocations are captured to `capture_template`.

    A `%p` in the template becomes the process id; forked children write their own files (and without
    `%p` a child appends `.<pid>`). Options are the keys of OPTIONS (e.g. tick_ms=10, native_depth=32).
    Programs the target execs inherit the variables, but the library leaves alone any process that has no
    Python interpreter (a shell, a compiler) unless all_processes=True.
    """
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k.startswith("LEAKBENCH_")]:
        del env[key]  # a stale option from the caller's own environment must not leak into the target
    library = str(tracker_library_path())
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = library + (" " + preload if preload else "")
    env["LEAKBENCH_CAPTURE"] = os.fspath(capture_template)
    for name, value in options.items():
        if name not in OPTIONS:
            raise TypeError(f"unknown tracker option {name!r}; known: {', '.join(sorted(OPTIONS))}")
        env[OPTIONS[name][0]] = str(int(value))
    return env
