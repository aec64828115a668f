"""Attach to a Python process that is already running: find out what it is, inject the agent, watch it for a
while, and leave it as it was.

The agent is started by having the process run `agent/attach.py` once, in its main thread, at a point where
running Python code is safe:

- Python 3.14 and later: `sys.remote_exec(pid, script)` (PEP 768), run by an interpreter of the same version.
- Python 3.11 to 3.13: gdb attaches and waits, with breakpoints, until a thread of the process enters one of
  a few functions of the interpreter that are only called with the GIL held and outside any system call
  (taking the GIL off for a blocking call, allocating or freeing an object). There it maps one page for a
  line of Python source, writes it, and queues `PyRun_SimpleString` on it with `Py_AddPendingCall`; then it
  removes the breakpoints and detaches. The interpreter runs the pending call in its main thread, between
  two bytecodes. Nothing is called in the process while a thread is stopped inside a system call: a call
  made there would end that call with an error the program never expected (ERESTARTNOHAND, errno 514).

The page (4 KiB) stays mapped in the process: it is the one thing an attach leaves behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from leakbench.errors import LeakbenchError

AGENT_ATTACH = Path(__file__).parent / "agent" / "attach.py"
INJECT_GDB = Path(__file__).parent / "native" / "inject_gdb.py"
SAFE_POINT_WAIT_S = 10.0  # how long gdb waits for a thread to run Python code
HELLO_WAIT_S = 15.0  # how long the launcher waits for the agent's first word after the injection
FIRST_GDB = (3, 11)
FIRST_REMOTE_EXEC = (3, 14)


class AttachError(LeakbenchError):
    """leakbench cannot attach to that process; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class PythonProcess:
    pid: int
    executable: str
    version: tuple[int, int]
    argv: tuple[str, ...]
    cwd: str


def inspect(pid: int) -> PythonProcess:
    """What runs as `pid`, refused with a reason when leakbench cannot attach to it."""
    proc = Path(f"/proc/{pid}")
    if pid <= 0 or not proc.is_dir():
        raise AttachError(f"no process with PID {pid}", hint="check the PID with `ps` or `pgrep -f app.py`")
    try:
        argv = tuple(a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a)
        comm = (proc / "comm").read_text().strip()
        maps = (proc / "maps").read_text()
        exe = os.readlink(proc / "exe")
        cwd = os.readlink(proc / "cwd")
    except PermissionError:
        raise AttachError(
            f"PID {pid} belongs to another user: leakbench cannot read it",
            hint="run leakbench as the user that runs the process (or as root)",
        ) from None
    except (FileNotFoundError, ProcessLookupError):
        raise AttachError(f"PID {pid} ended before leakbench could attach") from None
    if pid == os.getpid():
        raise AttachError("that PID is leakbench itself")
    if _ended(proc):
        raise AttachError(f"PID {pid} has ended (its parent has not collected its exit status yet)")
    version = _python_version(exe, maps)
    if version is None:
        raise AttachError(
            f"PID {pid} ({comm}) is not a Python process: no Python interpreter is loaded in it",
            hint="give the PID of the Python process itself, not of a shell or wrapper that started it",
        )
    if version < FIRST_GDB:
        raise AttachError(
            f"PID {pid} runs Python {version[0]}.{version[1]}: leakbench attaches to Python 3.11 and later",
            hint="run the program under `leakbench investigate` instead",
        )
    if _remote_debug_disabled(proc):
        raise AttachError(
            f"PID {pid} was started with remote debugging disabled (PYTHON_DISABLE_REMOTE_DEBUG or "
            "-X disable_remote_debug): leakbench does not attach to it",
            hint="start it without that setting, or under `leakbench investigate`",
        )
    return PythonProcess(pid, exe.removesuffix(" (deleted)"), version, argv, cwd)


def _ended(proc: Path) -> bool:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].startswith(("Z", "X"))


def _python_version(exe: str, maps: str) -> tuple[int, int] | None:
    """The interpreter's version from the library or executable mapped in the process: libpython3.12.so or a
    python3.12 binary. None when neither is there."""
    found = re.search(r"/libpython(\d)\.(\d+)t?\.so", maps)
    if found is None:
        found = re.search(r"python(\d)\.(\d+)t?(?: \(deleted\))?$", exe)
    if found is None and Path(exe).name.startswith("python") and "python" in maps:
        found = _ask_interpreter(exe)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _ask_interpreter(exe: str) -> re.Match[str] | None:
    try:
        out = subprocess.run(
            [exe, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return re.match(r"(\d)\.(\d+)", out.stdout.strip())


def _remote_debug_disabled(proc: Path) -> bool:
    with contextlib.suppress(OSError):
        for entry in (proc / "environ").read_bytes().split(b"\0"):
            if entry.startswith(b"PYTHON_DISABLE_REMOTE_DEBUG=") and entry.split(b"=", 1)[1]:
                return True
    with contextlib.suppress(OSError):
        args = (proc / "cmdline").read_bytes().split(b"\0")
        if b"disable_remote_debug" in args or any(a.startswith(b"-Xdisable_remote_debug") for a in args):
            return True
    return False


def inject(target: PythonProcess, config_path: Path, work: Path) -> str:
    """Have the process run the agent's attach.py with `config_path`; returns how ("gdb", "remote_exec")."""
    script = work / "attach-agent.py"
    # No name is bound where this runs (sys.remote_exec may run it in __main__'s namespace): one statement,
    # builtins reached through the builtins module in case the target's __main__ shadows them.
    namespace = {"__name__": "_leakbench_attach", "__file__": str(AGENT_ATTACH), "LEAKBENCH_CONFIG": str(config_path)}
    script.write_text(f"try:\n    {_exec_file(str(AGENT_ATTACH), namespace)}\nexcept BaseException:\n    pass\n")
    if target.version >= FIRST_REMOTE_EXEC:
        _remote_exec(target, script)
        return "remote_exec"
    _gdb_inject(target, script, work)
    return "gdb"


def _exec_file(path: str, namespace: dict[str, str]) -> str:
    """One line of Python that runs the file at `path` in a fresh namespace and binds no name."""
    b = "__import__('builtins')"
    return f"{b}.exec({b}.compile({b}.open({path!r}).read(), {path!r}, 'exec'), {namespace!r})"


def _remote_exec(target: PythonProcess, script: Path) -> None:
    """sys.remote_exec, run by an interpreter of the target's version (its own executable)."""
    code = "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])"
    try:
        out = subprocess.run(
            [target.executable, "-I", "-S", "-c", code, str(target.pid), str(script)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AttachError(f"cannot run {target.executable} to attach: {exc}") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise AttachError(f"sys.remote_exec could not attach to PID {target.pid}: {last}", hint=_PTRACE_HINT)


_PTRACE_HINT = (
    "attaching needs the ptrace permission: run as the process's user with kernel.yama.ptrace_scope = 0, or "
    "as root (in a container: --cap-add=SYS_PTRACE)"
)


def _gdb_inject(target: PythonProcess, script: Path, work: Path) -> None:
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError(
            f"attaching to Python {target.version[0]}.{target.version[1]} needs gdb, which is not installed",
            hint="apt-get install gdb (Python 3.14 and later need no debugger)",
        )
    scope = _ptrace_scope()
    if scope == 3:
        raise AttachError("this machine forbids attaching to processes (kernel.yama.ptrace_scope = 3)")
    # One line of Python source, run by the interpreter as a pending call: the agent's attach script.
    source = _exec_file(str(script), {"__name__": "_leakbench"})
    env = dict(os.environ)
    env.update(
        {
            "LEAKBENCH_INJECT_SOURCE": source,
            "LEAKBENCH_INJECT_WAIT": str(SAFE_POINT_WAIT_S),
            "LEAKBENCH_INJECT_RESULT": str(work / "inject.json"),
        }
    )
    command = [gdb, "-p", str(target.pid), "-batch", "-nx", "-q", "-iex", "set auto-load off", "-x", str(INJECT_GDB)]
    try:
        out = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=SAFE_POINT_WAIT_S + 60,
            start_new_session=True,  # the terminal's Ctrl-C is leakbench's to handle, not gdb's
        )
    except subprocess.TimeoutExpired:
        raise AttachError(f"gdb did not finish attaching to PID {target.pid}") from None
    (work / "gdb.log").write_text(out.stdout + out.stderr)
    result = _read_json(work / "inject.json")
    if result.get("queued"):
        return
    text = out.stdout + out.stderr
    if "No such process" in text or "is a zombie" in text or _ended(Path(f"/proc/{target.pid}")):
        raise AttachError(f"PID {target.pid} ended before leakbench could attach")
    if "ptrace: Operation not permitted" in text or "Could not attach to process" in text:
        raise AttachError(f"no permission to attach to PID {target.pid}", hint=_PTRACE_HINT)
    if result.get("reached") is False:
        raise AttachError(
            f"PID {target.pid} ran no Python code for {SAFE_POINT_WAIT_S:.0f} s (every thread is blocked), so "
            "leakbench could not start its agent safely",
            hint="attach again while the process is serving requests (e.g. with --load)",
        )
    problem = result.get("error") or (text.strip().splitlines() or ["gdb said nothing"])[-1]
    raise AttachError(f"gdb could not attach to PID {target.pid}: {problem}")


def _ptrace_scope() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    return None


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def wait_for_agent(pid: int, channel: Path, timeout: float = HELLO_WAIT_S) -> None:
    """Wait for the injected agent's `attached` event; on a timeout, cancel the queued start (it would run
    later, after leakbench has gone, and trace the process for nothing) and say why."""
    path = channel / f"{pid}.jsonl"
    error = channel / "attach-error.txt"
    until = time.time() + timeout
    while time.time() < until:
        if error.exists():
            raise AttachError(f"leakbench's agent could not start in PID {pid}: {error.read_text().strip()}")
        with contextlib.suppress(OSError):
            if b'"event": "attached"' in path.read_bytes():
                return
        if not Path(f"/proc/{pid}").exists():
            raise AttachError(f"PID {pid} ended while leakbench was attaching")
        time.sleep(0.05)
    (channel / "cancel").write_text("leakbench gave up waiting\n")
    raise AttachError(
        f"PID {pid} did not run leakbench's agent within {timeout:.0f} s: its main thread ran no Python code",
        hint="a main thread blocked in C (a join without timeout, a long C call) runs no pending call; attach "
        "again while it serves requests",
    )
