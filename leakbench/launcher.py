"""Run the target in a child process with the in-target agent, sample its memory, and record its end.

The target runs as `python app.py args` would (argv, sys.path[0], __main__, cwd, stdio and exit code are
its own); the agent is started first by `agent/bootstrap.py` and reports through files in the run's
channel folder. Everything is written as it happens, so a target killed mid-run still leaves evidence.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from leakbench.analysis.model import ExitStatus, Frame, ProcessSeries, Role, TargetExit
from leakbench.analysis.sites import FrameRules
from leakbench.errors import TargetError
from leakbench.target import TargetSpec

AGENT_DIR = Path(__file__).resolve().parent / "agent"
BOOTSTRAP = AGENT_DIR / "bootstrap.py"

STDERR_TAIL_BYTES = 8192  # the end of the target's stderr kept for the report
STDERR_TAIL_LINES = 40
FINAL_WAIT_S = 15.0  # how long the agent may take to start its last readings before the target is interrupted
FINAL_MAX_WAIT_S = 120.0  # ... and to finish them, once started
ENDS_WAIT_S = 15.0  # how long a process the agent ends itself may take to be gone
SIGINT_WAIT_S = 10.0  # a target cleaning up after KeyboardInterrupt (a pool ending its workers) takes a while
SIGTERM_WAIT_S = 3.0


@dataclass(frozen=True, slots=True)
class Probe:
    """An agent-side module (a file with `start(agent, options)`) that a stage asks to run in the target."""

    name: str
    path: str
    options: Mapping[str, Any] = field(default_factory=dict)


class StopPolicy(Protocol):
    """Looked at every loop while the target runs; returns a reason to stop it early, or None."""

    def should_stop(self, live: LiveRun) -> str | None: ...


class BudgetPolicy:
    """Stop a target that is still running after `seconds` (0: never)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def should_stop(self, live: LiveRun) -> str | None:
        return "budget" if self.seconds and live.elapsed >= self.seconds else None


@dataclass(frozen=True, slots=True)
class RunRequest:
    name: str
    probes: tuple[Probe, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    duration: float | None = None
    rss_interval: float = 0.1
    stop_policies: tuple[StopPolicy, ...] = ()
    load: str | None = None  # a command run beside the target once it has started (e.g. sends it requests)


@dataclass(frozen=True, slots=True)
class TargetRun:
    """Everything one run of the target left behind, read back from its folder."""

    folder: Path
    pid: int
    started_at: float
    ended_at: float
    exit: TargetExit
    series: tuple[ProcessSeries, ...]
    events: Mapping[int, tuple[dict[str, Any], ...]]
    roles: Mapping[int, Role]

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at

    def events_of(self, kind: str, pid: int | None = None) -> list[dict[str, Any]]:
        pids = [pid] if pid is not None else sorted(self.events)
        return [e for p in pids for e in self.events.get(p, ()) if e.get("event") == kind]

    def hello(self, pid: int | None = None) -> dict[str, Any]:
        found = self.events_of("hello", self.pid if pid is None else pid)
        return found[0] if found else {}


class LiveRun:
    """The state of a run in progress, for stop policies and progress display."""

    def __init__(self, folder: Path, started_at: float) -> None:
        self.folder = folder
        self.started_at = started_at
        self.channel = ChannelReader(folder / "channel")

    @property
    def elapsed(self) -> float:
        return time.time() - self.started_at

    def events(self) -> Mapping[int, list[dict[str, Any]]]:
        return self.channel.poll()


class ChannelReader:
    """Reads the agent's per-process JSON-lines files incrementally; a torn last line waits for its end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._offsets: dict[int, int] = {}
        self._events: dict[int, list[dict[str, Any]]] = {}

    def poll(self) -> Mapping[int, list[dict[str, Any]]]:
        for path in sorted(self.folder.glob("*.jsonl")):
            pid = int(path.stem)
            offset = self._offsets.get(pid, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].splitlines():
                with contextlib.suppress(ValueError):
                    self._events.setdefault(pid, []).append(json.loads(line))
            self._offsets[pid] = offset + end
        return self._events


class _Sampler(threading.Thread):
    """Samples RSS and VMS of the target and its descendants; appends every sample to rss.jsonl."""

    def __init__(self, root: psutil.Process, interval: float, out: Path, started_at: float) -> None:
        super().__init__(name="leakbench-rss", daemon=True)
        self.root = root
        self.interval = interval
        self.out = out
        self.started_at = started_at
        self.samples: dict[int, list[tuple[float, int, int]]] = {}
        self.parents: dict[int, int] = {}
        self.known: dict[int, psutil.Process] = {root.pid: root}
        self._halt = threading.Event()

    def run(self) -> None:
        with self.out.open("a") as sink:
            while not self._halt.is_set():
                self._sample(sink)
                self._halt.wait(self.interval)
            self._sample(sink)

    def _sample(self, sink: Any) -> None:
        now = time.time() - self.started_at
        try:
            for child in self.root.children(recursive=True):
                if child.pid not in self.known:
                    self.known[child.pid] = child
                    with contextlib.suppress(psutil.Error):
                        self.parents[child.pid] = child.ppid()
        except psutil.Error:
            pass
        for pid, proc in list(self.known.items()):
            try:
                mem = proc.memory_info()
            except psutil.Error:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            self.samples.setdefault(pid, []).append((now, mem.rss, mem.vms))
            sink.write(json.dumps([round(now, 4), pid, mem.rss, mem.vms]) + "\n")
        sink.flush()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def descendants(self) -> list[psutil.Process]:
        return [p for pid, p in self.known.items() if pid != self.root.pid]


def launch(
    target: TargetSpec,
    request: RunRequest,
    folder: Path,
    *,
    on_tick: Callable[[LiveRun], None] | None = None,
    on_stop: Callable[[str], None] | None = None,
) -> TargetRun:
    """Run the target once under the agent and return what it left in `folder`."""
    config_path = _agent_config(folder, request)
    env = dict(os.environ)
    env.update(request.env)
    env["LEAKBENCH_AGENT_CONFIG"] = str(config_path)
    _carry_agent_to_children(env)
    command = [target.python, str(BOOTSTRAP)]
    command += ["--module", target.module] if target.module else ["--script", target.script or ""]
    command += ["--", *target.args]
    (folder / "command.json").write_text(json.dumps({"argv": command, "cwd": target.cwd}, indent=2))

    limit = target.memory_limit_bytes
    stdin = _stdin_for_run()
    tee = _StderrTee(folder / "stderr-tail.txt")
    started_at = time.time()
    try:
        proc = subprocess.Popen(
            command,
            cwd=target.cwd,
            env=env,
            stdin=stdin,
            stderr=tee.child_fd,
            preexec_fn=(lambda: _limit_address_space(limit)) if limit else None,
        )
    except OSError as exc:
        tee.close()
        raise TargetError(f"cannot start {target.python}: {exc.strerror}") from None
    finally:
        if stdin is not None:
            os.close(stdin)
    tee.start()

    live = LiveRun(folder, started_at)
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        root = None
    sampler = _Sampler(root, request.rss_interval, folder / "rss.jsonl", started_at) if root else None
    if sampler:
        sampler.start()
    stopped_by: str | None = None
    load = _LoadCommand(request.load, target.cwd, folder / "load.log") if request.load else None
    try:
        stopped_by = _supervise(proc, request, live, on_tick, load, on_stop)
    finally:
        if load:
            load.stop()
        returncode = proc.wait()
        tee.close()
        if sampler:
            sampler.stop()
            _reap(sampler.descendants())
    ended_at = time.time()
    events = {pid: tuple(evs) for pid, evs in live.channel.poll().items()}
    series = _series(sampler, proc.pid)
    run = TargetRun(
        folder=folder,
        pid=proc.pid,
        started_at=started_at,
        ended_at=ended_at,
        exit=_ending(returncode, events.get(proc.pid, ()), stopped_by),
        series=series,
        events=events,
        roles=_roles(proc.pid, [s.pid for s in series] + list(events)),
    )
    save_run(run)
    return run


def _agent_config(folder: Path, request: RunRequest, **extra: Any) -> Path:
    """The run's folder with its channel and artifact folders, and the agent's config written into it."""
    folder.mkdir(parents=True, exist_ok=True)
    channel = folder / "channel"
    channel.mkdir(exist_ok=True)
    artifacts = folder / "raw"
    artifacts.mkdir(exist_ok=True)
    config = {
        "channel": str(channel),
        "artifacts": str(artifacts),
        "probes": [{"name": p.name, "path": p.path, "options": dict(p.options)} for p in request.probes],
        **extra,
    }
    config_path = folder / "agent.json"
    config_path.write_text(json.dumps(config, indent=2))
    return config_path


CHILD_SITE = AGENT_DIR / "child_site"


def _carry_agent_to_children(env: dict[str, str]) -> None:
    """Python processes the target starts afresh (multiprocessing's spawn and forkserver, `python ...`) load
    the agent through child_site/sitecustomize.py; PYTHONPATH is read by Python only. Forked children carry
    the agent already, and the native tracker follows every Python process through LD_PRELOAD."""
    rest = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(CHILD_SITE) + (os.pathsep + rest if rest else "")


_stdin_start: int | None = None


def _stdin_for_run() -> int | None:
    """A regular file on leakbench's stdin, opened again for each run of the target from where it began.

    Every run then reads the same input, as the program would when run on its own. A pipe or a terminal
    is passed on as it is (what one run reads is gone for the next). None: inherit stdin.
    """
    global _stdin_start
    try:
        if not stat.S_ISREG(os.fstat(0).st_mode):
            return None
        if _stdin_start is None:
            _stdin_start = os.lseek(0, 0, os.SEEK_CUR)
        fd = os.open("/proc/self/fd/0", os.O_RDONLY)  # its own offset, unlike a dup
    except OSError:
        return None
    os.lseek(fd, _stdin_start, os.SEEK_SET)
    return fd


def _roles(main_pid: int, pids: Sequence[int]) -> dict[int, Role]:
    return {pid: ("main" if pid == main_pid else "child") for pid in pids}


def _limit_address_space(limit: int | None) -> None:
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _StderrTee(threading.Thread):
    """The target's stderr passed on to leakbench's, byte for byte, with its last lines kept for the report.

    On a terminal the target gets a pseudo-terminal in raw mode (no newline translation) of the same size,
    so that it still sees a terminal and colours, progress bars and line buffering stay as they were;
    otherwise a pipe. Children that keep the descriptor open past the target's end are not waited for.
    """

    def __init__(self, tail_path: Path) -> None:
        super().__init__(name="leakbench-stderr", daemon=True)
        self.tail_path = tail_path
        self.tail = bytearray()
        if os.isatty(2):
            import pty
            import tty

            self.read_fd, self.child_fd = pty.openpty()
            tty.setraw(self.child_fd)
            with contextlib.suppress(OSError):
                import fcntl
                import termios

                size = fcntl.ioctl(2, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(self.child_fd, termios.TIOCSWINSZ, size)
        else:
            self.read_fd, self.child_fd = os.pipe()
        self._child_open = True

    def start(self) -> None:
        os.close(self.child_fd)  # the target has its own copy
        self._child_open = False
        super().start()

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:  # a pseudo-terminal whose other side is closed
                break
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                try:
                    view = view[os.write(2, view) :]
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - STDERR_TAIL_BYTES)]

    def close(self) -> None:
        if self._child_open:
            os.close(self.child_fd)
            self._child_open = False
        if self.is_alive():
            self.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        lines = bytes(self.tail).decode("utf-8", "replace").replace("\r\n", "\n").splitlines()
        with contextlib.suppress(OSError):
            self.tail_path.write_text("\n".join(lines[-STDERR_TAIL_LINES:]) + ("\n" if lines else ""))


def stderr_tail(folder: Path) -> str:
    """The last lines the target wrote to stderr in one run (empty when it wrote none)."""
    try:
        return (folder / "stderr-tail.txt").read_text()
    except OSError:
        return ""


class _LoadCommand:
    """The playbook's load generator: started once the target runs, stopped when it ends."""

    def __init__(self, command: str, cwd: str, log: Path) -> None:
        self.command = command
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        with self.log.open("ab") as sink:
            try:
                self.proc = subprocess.Popen(
                    shlex.split(self.command), cwd=self.cwd, stdout=sink, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                sink.write(f"leakbench: cannot start the load command {self.command!r}: {exc}\n".encode())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _supervise(
    proc: subprocess.Popen[bytes],
    request: RunRequest,
    live: LiveRun,
    on_tick: Callable[[LiveRun], None] | None,
    load: _LoadCommand | None = None,
    on_stop: Callable[[str], None] | None = None,
) -> str | None:
    """Wait for the target; stop it at the duration, when a policy says so, or on Ctrl-C."""
    deadline = live.started_at + request.duration if request.duration else None
    try:
        while proc.poll() is None:
            time.sleep(0.1)
            if on_tick:
                on_tick(live)
            if load and load.proc is None and (live.elapsed > 2 or _target_started(live, proc.pid)):
                load.start()
            reason = None
            if deadline and time.time() >= deadline:
                reason = "duration"
            else:
                for policy in request.stop_policies:
                    reason = policy.should_stop(live)
                    if reason:
                        break
            if reason:
                return _stopped(reason, _stop(proc, live, reason), live, on_stop)
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the target too; give it the same chance to finish.
        ended_by = None
        with contextlib.suppress(KeyboardInterrupt):
            ended_by = _stop(proc, live, "interrupt")
        return _stopped("interrupt", ended_by, live, on_stop)
    return None


def _stopped(reason: str, ended_by: signal.Signals | None, live: LiveRun, on_stop: Callable[[str], None] | None) -> str:
    """What the report says about a stop: the reason, and the signal that ended the target when SIGINT
    did not (a target that ignores it); one line for the user, who would otherwise see no explanation."""
    detail = reason
    if ended_by is not None and ended_by != signal.SIGINT:
        ignored = "SIGINT" if ended_by == signal.SIGTERM else "SIGINT and SIGTERM"
        detail = f"{reason}; it ignored {ignored} and was ended by {ended_by.name}"
    if on_stop is not None:
        words = {
            "duration": "the --duration was reached",
            "interrupt": "Ctrl-C",
            "conclusive": "the trend was conclusive",
            "budget": "the stage's time budget was spent",
            "user": "asked from the live view",
        }.get(reason, reason)
        on_stop(f"leakbench: stopped the target after {live.elapsed:.0f} s ({words})" + detail[len(reason) :])
    return detail


def _target_started(live: LiveRun, pid: int) -> bool:
    return any(e.get("event") == "target-start" for e in live.events().get(pid, []))


def _stop(proc: subprocess.Popen[bytes], live: LiveRun, reason: str = "") -> signal.Signals | None:
    """Ask the agent for its last readings, then SIGINT, SIGTERM, SIGKILL, each after a grace period.

    A target that leaves SIGINT to Python ends itself once the agent has its readings (the final event says
    `ends`); it is signalled only if it has not ended after a grace period.

    Returns the signal after which the target ended (None: it ended on its own meanwhile)."""
    (live.folder / "channel" / "stop").write_text(reason)
    asked = time.time()
    while proc.poll() is None:
        events = live.events().get(proc.pid, [])
        final = [e for e in events if e.get("event") == "final"]
        if final:
            if final[-1].get("ends"):  # the agent ends the process itself, at once
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=ENDS_WAIT_S)
            break
        # An agent still taking its last readings (seen starting them) is waited for longer: on a busy
        # machine they take a while, and a signal meanwhile would be read as the target ignoring it.
        started = any(e.get("event") == "finishing" for e in events)
        if time.time() - asked >= (FINAL_MAX_WAIT_S if started else FINAL_WAIT_S):
            break
        time.sleep(0.05)
    sent = None
    for signum, wait in (
        (signal.SIGINT, SIGINT_WAIT_S),
        (signal.SIGTERM, SIGTERM_WAIT_S),
        (signal.SIGKILL, 5),
    ):
        if proc.poll() is not None:
            return sent
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        sent = signum
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    return sent


def _reap(children: Sequence[psutil.Process]) -> None:
    """Leave no orphaned workers behind once the main process has gone."""
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, still = psutil.wait_procs(alive, timeout=3)
    for child in still:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _ending(returncode: int, events: Sequence[dict[str, Any]], stopped_by: str | None) -> TargetExit:
    code = returncode if returncode >= 0 else None
    signum = -returncode if returncode < 0 else None
    raised = [e for e in events if e.get("event") == "exception"]
    if stopped_by:  # the interrupt leakbench sent is not the target's exception
        raised = [e for e in raised if e.get("type") != "KeyboardInterrupt"]
    exc = raised[-1] if raised else None
    frames = tuple(Frame(f[0], int(f[1]), f[2], f[3]) for f in exc.get("traceback", [])) if exc else ()
    status: ExitStatus
    if stopped_by:
        status = "timeout"
    elif exc and exc.get("type") == "MemoryError":
        status = "memory-error"
    elif exc:
        status = "exception"
    elif signum is not None:
        status = "killed"
    else:
        status = "ok"
    return TargetExit(
        code=code,
        signal=signum,
        status=status,
        exception_type=exc.get("type") if exc else None,
        exception_message=exc.get("message") if exc else None,
        traceback=frames,
        stopped_by=stopped_by,
    )


def _series(sampler: _Sampler | None, main_pid: int) -> tuple[ProcessSeries, ...]:
    if sampler is None:
        return ()
    out = []
    for pid, rows in sorted(sampler.samples.items()):
        if not rows:
            continue
        role: Role = "main" if pid == main_pid else "child"
        out.append(
            ProcessSeries(
                pid=pid,
                role=role,
                times=tuple(r[0] for r in rows),
                rss=tuple(r[1] for r in rows),
                vms=tuple(r[2] for r in rows),
            )
        )
    return tuple(out)


def rules_from_hello(hello: dict[str, Any]) -> FrameRules:
    """How to tell the target's own code from libraries and leakbench, from what the agent said at start."""
    return FrameRules(
        library_paths=tuple(p.rstrip("/") + "/" for p in hello.get("library_paths", [])),
        agent_dir=hello.get("agent_dir", str(AGENT_DIR) + "/"),
        launch_file=hello.get("launch_file", ""),
        inherited=tuple((str(f[0]), int(f[1])) for f in hello.get("inherited", [])),
    )


def load_run(folder: Path) -> TargetRun:
    """Read a finished run back from its folder (for `leakbench report` and resumed runs)."""
    meta = json.loads((folder / "run.json").read_text())
    channel = ChannelReader(folder / "channel")
    events = {pid: tuple(evs) for pid, evs in channel.poll().items()}
    rows: dict[int, list[list[float]]] = {}
    rss_path = folder / "rss.jsonl"
    if rss_path.exists():
        for line in rss_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                t, pid, rss, vms = json.loads(line)
                rows.setdefault(int(pid), []).append([t, rss, vms])
    main_pid = int(meta["pid"])
    series = tuple(
        ProcessSeries(
            pid=pid,
            role="main" if pid == main_pid else "child",
            times=tuple(float(r[0]) for r in data),
            rss=tuple(int(r[1]) for r in data),
            vms=tuple(int(r[2]) for r in data),
        )
        for pid, data in sorted(rows.items())
    )
    ex = meta["exit"]
    return TargetRun(
        folder=folder,
        pid=main_pid,
        started_at=float(meta["started_at"]),
        ended_at=float(meta["ended_at"]),
        exit=TargetExit(
            code=ex["code"],
            signal=ex["signal"],
            status=ex["status"],
            exception_type=ex.get("exception_type"),
            exception_message=ex.get("exception_message"),
            traceback=tuple(Frame(**f) for f in ex.get("traceback", [])),
            stopped_by=ex.get("stopped_by"),
        ),
        series=series,
        events=events,
        roles=_roles(main_pid, [s.pid for s in series] + list(events)),
    )


def save_run(run: TargetRun) -> None:
    """Write run.json so the run folder describes itself."""
    from leakbench.analysis.model import to_jsonable

    meta = {
        "pid": run.pid,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "exit": to_jsonable(run.exit),
    }
    (run.folder / "run.json").write_text(json.dumps(meta, indent=2))


DETACH_WAIT_S = 30.0  # how long the agent may take for its last readings and to remove itself


def attach_run(
    pid: int,
    request: RunRequest,
    folder: Path,
    *,
    cwd: str,
    on_tick: Callable[[LiveRun], None] | None = None,
    on_stop: Callable[[str], None] | None = None,
) -> TargetRun:
    """Watch a process that was already running, with the agent injected into it when a stage needs probes,
    for the request's duration (or until Ctrl-C, or until it ends); then the agent removes itself. The
    process is never stopped or signalled."""
    from leakbench.attach import AttachError, inject, inspect, wait_for_agent

    target = inspect(pid)
    # the agent detaches by itself if leakbench goes away
    config_path = _agent_config(folder, request, launcher_pid=os.getpid())
    channel = folder / "channel"
    (folder / "command.json").write_text(json.dumps({"attached_pid": pid, "argv": list(target.argv)}, indent=2))
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        raise AttachError(f"PID {pid} ended before leakbench could attach") from None
    started_at = time.time()
    if request.probes:
        how = inject(target, config_path, folder)
        wait_for_agent(pid, channel)
        (folder / "attach.json").write_text(json.dumps({"pid": pid, "how": how, "python": target.version}))
    live = LiveRun(folder, started_at)
    sampler = _Sampler(root, request.rss_interval, folder / "rss.jsonl", started_at)
    sampler.start()
    load = _LoadCommand(request.load, cwd, folder / "load.log") if request.load else None
    stopped_by = "detached"
    try:
        stopped_by = _watch(root, request, live, on_tick, load)
    finally:
        if load:
            load.stop()
        if request.probes and stopped_by != "ended":
            _detach(live, root)
        sampler.stop()
    ended_at = time.time()
    events = {p: tuple(evs) for p, evs in live.channel.poll().items()}
    series = _series(sampler, pid)
    gone = stopped_by == "ended"
    if on_stop is not None:
        on_stop(
            f"leakbench: PID {pid} ended while leakbench was attached ({ended_at - started_at:.0f} s)"
            if gone
            else f"leakbench: detached from PID {pid} after {ended_at - started_at:.0f} s; it keeps running"
        )
    run = TargetRun(
        folder=folder,
        pid=pid,
        started_at=started_at,
        ended_at=ended_at,
        exit=TargetExit(None, None, "ok" if gone else "timeout", stopped_by=None if gone else "detached"),
        series=series,
        events=events,
        roles=_roles(pid, [s.pid for s in series] + list(events)),
    )
    save_run(run)
    return run


def _watch(
    root: psutil.Process,
    request: RunRequest,
    live: LiveRun,
    on_tick: Callable[[LiveRun], None] | None,
    load: _LoadCommand | None,
) -> str:
    """Until the duration, a stop policy, Ctrl-C, or the process's end: the reason."""
    deadline = live.started_at + request.duration if request.duration else None
    if load:
        load.start()
    try:
        while _running(root):
            time.sleep(0.1)
            if on_tick:
                on_tick(live)
            if deadline and time.time() >= deadline:
                return "duration"
            for policy in request.stop_policies:
                reason = policy.should_stop(live)
                if reason:
                    return reason
    except KeyboardInterrupt:
        return "interrupt"
    except psutil.Error:
        pass
    return "ended"


def _detach(live: LiveRun, root: psutil.Process) -> None:
    """Ask the agent for its last readings and to remove itself; wait until it says it has (or the process
    has ended meanwhile)."""
    (live.folder / "channel" / "stop").write_text("detach")
    until = time.time() + DETACH_WAIT_S
    while time.time() < until:
        if any(e.get("event") == "detached" for e in live.events().get(root.pid, [])):
            return
        if not _running(root):
            return
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
