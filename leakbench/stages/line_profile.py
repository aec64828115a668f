"""Stage `line_profile`: memory_profiler's line-by-line table of the function the earlier stages blamed.

The step an engineer takes once the function is known (seed article 004): a simplified, single-process run
of the target with the line profiler on that one function, stopped after a few calls, without editing the
source. The function is the innermost one of the user's own code on the top suspect's stack (or the one named
with `--function`); the run is the target itself (or the `--repro` command), ended after `repro_calls`
completed calls or the budget. The line that added the most is tied to the suspect at the same line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from leakbench.analysis.line_profile import (
    BACKEND_NOTES,
    BACKENDS,
    Choice,
    FunctionSpec,
    LineProfile,
    choose_from_suspects,
    main_function,
    mark_line,
    parse_event,
    parse_function_spec,
)
from leakbench.analysis.model import StageReport, Suspect
from leakbench.analysis.sites import FrameRules
from leakbench.errors import LeakbenchError, UsageError
from leakbench.launcher import AGENT_DIR, LiveRun, Probe, RunRequest, TargetRun, launch
from leakbench.stages.base import Contribution, StageContext
from leakbench.target import TargetSpec, make_target
from leakbench.units import human_bytes


@dataclass(frozen=True, slots=True)
class LineProfileParams:
    repro_calls: int = 50  # stop the repro once the function has completed this many (outermost) calls
    budget: float = 60.0  # seconds the repro may run at most
    backend: str = "auto"  # "tracemalloc", "psutil" (RSS), or "auto": psutil only for native suspects


@dataclass(frozen=True, slots=True)
class Outcome:
    """One repro run and what its probe wrote (profile None: the probe wrote nothing)."""

    run: TargetRun
    profile: LineProfile | None
    problem: str | None = None
    budget: float = 0.0


class DonePolicy:
    """Stops the target once the probe has its calls, when the target did not leave by itself.

    The probe ends the target itself when the last call returns in its main thread (the process ends at once,
    none of its code run after); a call that completes in another thread or a worker process needs this.
    """

    GRACE_S = 2.0

    def should_stop(self, live: LiveRun) -> str | None:
        now = time.time()
        for events in live.events().values():
            if any(e.get("event") == "line-profile" and e.get("done") and now - e["t"] > self.GRACE_S for e in events):
                return "repro-calls"
        return None


class LineProfileStage:
    kind: ClassVar[str] = "line_profile"
    summary: ClassVar[str] = "memory_profiler line by line on a short repro of the suspect function"
    own_run: ClassVar[bool] = True
    Params = LineProfileParams

    def __init__(self, params: LineProfileParams) -> None:
        if params.backend not in BACKENDS:
            raise UsageError(f"line_profile backend {params.backend!r}: choose {', '.join(BACKENDS)}")
        self.params = params

    def contribute(self, ctx: StageContext) -> Contribution:
        return Contribution()

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        target = repro_target(ctx.options.repro, ctx.target) if ctx.options.repro else ctx.target
        if ctx.options.function:
            spec = parse_function_spec(ctx.options.function, search_dirs(target), script_path(target))
            choice = Choice(spec, "named with --function")
        else:
            found = _choice_from_earlier(ctx)
            if found is None:
                return StageReport(self.kind, "skipped", _nothing_to_profile(ctx))
            choice = found
        suspect = choice.suspect
        backend = self.params.backend
        if backend == "auto":
            backend = "psutil" if suspect is not None and not suspect.visible_to_tracemalloc else "tracemalloc"
        calls = ctx.options.repro_calls or self.params.repro_calls
        budget = min(self.params.budget, ctx.options.duration) if ctx.options.duration else self.params.budget
        ctx.log(f"line_profile: {choice.spec.label()} for {calls} calls or {budget:g} s ({backend})")
        outcome = profile_function(
            target, choice.spec, calls=calls, budget=budget, backend=backend, folder=ctx.stage_dir(self.kind) / "run"
        )
        return stage_report(self.kind, ctx.run_dir, target, choice, outcome)


def line_profile(
    target: TargetSpec,
    function: str,
    *,
    folder: Path,
    calls: int = 50,
    budget: float = 60.0,
    backend: str = "tracemalloc",
) -> StageReport:
    """The stage on its own (`leakbench lineprofile`): profile the named function, no earlier stages."""
    if backend not in BACKENDS or backend == "auto":
        raise UsageError(f"--backend {backend}: choose tracemalloc or psutil")
    spec = parse_function_spec(function, search_dirs(target), script_path(target))
    outcome = profile_function(target, spec, calls=calls, budget=budget, backend=backend, folder=folder / "run")
    return stage_report(LineProfileStage.kind, folder, target, Choice(spec, "named with --function"), outcome)


def _choice_from_earlier(ctx: StageContext) -> Choice | None:
    from leakbench.analysis.findings import merge_suspects

    earlier = {k: r for k, r in ctx.earlier.items() if k in ("tracemalloc", "native") and r.status == "ok"}
    rules = user_code_rules(ctx.target.python)
    return choose_from_suspects(merge_suspects(earlier), rules.is_user)


def _nothing_to_profile(ctx: StageContext) -> str:
    if not any(k in ctx.earlier for k in ("tracemalloc", "native")):
        return "no function to profile: name one with --function (no tracemalloc or native stage ran before)"
    return "no function to profile: no suspect in a function of your code (name one with --function)"


# -- the repro run -----------------------------------------------------------------------------------------
def memory_profiler_path() -> str:
    found = importlib.util.find_spec("memory_profiler")
    if found is None or not found.origin:
        raise LeakbenchError("memory_profiler is not installed", hint="pip install memory-profiler")
    return found.origin


def profile_function(
    target: TargetSpec,
    spec: FunctionSpec,
    *,
    calls: int,
    budget: float,
    backend: str,
    folder: Path,
) -> Outcome:
    """Run the target once with the line profiler on `spec`; never longer than `budget` seconds."""
    options = {
        "qualname": spec.qualname,
        "file": spec.file,
        "module": spec.module,
        "calls": calls,
        "backend": backend,
        "memory_profiler": memory_profiler_path(),
    }
    probe = Probe("line_profile", str(AGENT_DIR / "lineprofile_probe.py"), options)
    request = RunRequest(name="line-profile", probes=(probe,), duration=budget, stop_policies=(DonePolicy(),))
    run = launch(target, request, folder)
    unavailable = run.events_of("line-profile-unavailable")
    if unavailable:
        problem = f"memory_profiler could not start in the target: {unavailable[0].get('error')}"
        return Outcome(run, None, problem, budget)
    written = run.events_of("line-profile")
    if not written:
        return Outcome(run, None, "the target ended before the line profiler wrote its table", budget)
    # A worker process that ran the function writes its own table: show the one with the most calls.
    event = max(written, key=lambda e: (e.get("calls_completed", 0), e.get("calls_started", 0), e["pid"] == run.pid))
    profile = parse_event(event)
    found = [e for e in run.events_of("line-profile-found", event["pid"]) if e.get("via")]
    if found:
        profile = replace(profile, via=str(found[0]["via"]))
    problems = [e["error"] for e in run.events_of("probe-error") if e.get("probe") == "line_profile"]
    return Outcome(run, profile, "; ".join(problems) or None, budget)


def repro_target(command: str, target: TargetSpec) -> TargetSpec:
    """`--repro "app.py --articles 50"` (optionally starting with python, or -m MODULE) as a target."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--repro {command!r}: {exc}") from None
    if words and Path(words[0]).name.startswith("python") and not words[0].endswith(".py"):
        words = words[1:]
    if not words:
        raise UsageError(f"--repro {command!r}: no script to run", hint='e.g. --repro "app.py --articles 50"')
    if words[0] == "-m" and len(words) > 1:
        return make_target(words[1], words[2:], module=True, python=target.python, cwd=target.cwd)
    script = words[0] if os.path.isabs(words[0]) else os.path.join(target.cwd, words[0])
    spec = make_target(script, words[1:], python=target.python, cwd=target.cwd)
    return replace(spec, memory_limit_bytes=target.memory_limit_bytes)


def script_path(target: TargetSpec) -> str | None:
    if not target.script:
        return None
    path = target.script if os.path.isabs(target.script) else os.path.join(target.cwd, target.script)
    return str(Path(path) / "__main__.py") if os.path.isdir(path) else path


def search_dirs(target: TargetSpec) -> list[str]:
    """Where `--function` files and modules are looked for: the script's folder (sys.path[0]), then cwd."""
    script = script_path(target)
    dirs = [os.path.dirname(os.path.realpath(script))] if script else []
    return [*dirs, target.cwd] if target.cwd not in dirs else dirs


def user_code_rules(python: str) -> FrameRules:
    return FrameRules(library_paths=_library_paths(python), agent_dir=str(AGENT_DIR) + os.sep)


@lru_cache(maxsize=4)
def _library_paths(python: str) -> tuple[str, ...]:
    """The target interpreter's stdlib and site-packages folders: code there is not the user's."""
    script = (
        "import json, site, sysconfig; p = sysconfig.get_paths(); "
        "s = [p[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib') if k in p]; "
        "s += site.getsitepackages() if hasattr(site, 'getsitepackages') else []; print(json.dumps(s))"
    )
    try:
        out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout
        paths = [str(p) for p in json.loads(out)]
    except (OSError, subprocess.SubprocessError, ValueError):
        import sysconfig

        paths = [sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")]
    real = {os.path.realpath(p) for p in paths} | set(paths)
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in real))


# -- the report ----------------------------------------------------------------------------------------------
STOP_WORDS = {
    "calls": "after {n} completed call(s), as asked",
    "budget": "when the {budget:g} s budget ran out, after {n} completed call(s)",
    "target-end": "when the target's code returned, after {n} completed call(s)",
    "exit": "when the target exited, after {n} completed call(s)",
}


def stage_report(kind: str, run_dir: Path, target: TargetSpec, choice: Choice, outcome: Outcome) -> StageReport:
    run, profile = outcome.run, outcome.profile
    spec = choice.spec
    data: dict[str, Any] = {
        "function": {"qualname": spec.qualname, "file": spec.file, "module": spec.module, "line": spec.line},
        "chosen_because": choice.because,
        "repro": {
            "argv": target.argv,
            "duration_s": round(run.duration_s, 3),
            "exit": run.exit.describe(),
        },
    }
    if profile is None:
        return StageReport(kind, "failed", outcome.problem or "no line profile", data=data)
    budget = run.exit.stopped_by == "duration"
    reason = "budget" if budget and profile.reason != "calls" else profile.reason
    data.update(
        backend=profile.backend,
        backend_note=BACKEND_NOTES.get(profile.backend, ""),
        calls_wanted=profile.calls_wanted,
        calls_started=profile.calls_started,
        calls_completed=profile.calls_completed,
        stopped=reason,
        text=_relative(profile.text_path, run_dir),
        via=profile.via,
    )
    data["repro"]["stopped"] = STOP_WORDS.get(reason, reason).format(n=profile.calls_completed, budget=outcome.budget)
    table = main_function(profile)
    if not profile.ran or table is None:
        data["never_called"] = True
        message = (
            f"{spec.label()} never ran in the repro ({' '.join(target.argv[1:])}, which {run.exit.describe()} "
            f"after {run.duration_s:.1f} s): nothing to profile; give arguments or a --repro command that reach it"
        )
        return StageReport(kind, "ok", message, data=data)
    marked = mark_line(table)
    data["never_called"] = False
    data["profiled"] = {"qualname": table.qualname, "file": table.file, "line": table.first_line}
    data["total_increment_bytes"] = table.total_increment
    data["table"] = [
        {
            "line": row.line,
            "mem_bytes": row.mem_bytes,
            "increment_bytes": row.increment_bytes,
            "occurrences": row.occurrences,
            "text": row.text,
            "marked": marked is not None and row.line == marked.line,
        }
        for row in table.lines
    ]
    suspects: tuple[Suspect, ...] = ()
    name = f"{table.qualname} ({Path(table.file).name}:{table.first_line})"
    message = f"{name}: {profile.calls_completed} completed call(s) in {run.duration_s:.1f} s ({profile.backend})"
    if marked is None:
        data["marked"] = None
        message += "; no line kept memory"
    else:
        top = choice.suspect
        same = top is not None and (top.file, top.line) == (table.file, marked.line)
        data["marked"] = {
            "line": marked.line,
            "increment_bytes": marked.increment_bytes,
            "occurrences": marked.occurrences,
            "text": marked.text.strip(),
            "share": round(marked.increment_bytes / table.total_increment, 3) if table.total_increment > 0 else None,
            "is_top_suspect": same,
        }
        message += (
            f"; line {marked.line} added the most, +{human_bytes(marked.increment_bytes)} "
            f"over {marked.occurrences} run(s): {marked.text.strip()}"
        )
        if top is not None and not same:
            message += f" (the top suspect was {Path(top.file).name}:{top.line})"
        suspects = (
            Suspect(
                file=table.file,
                line=marked.line,
                function=table.qualname,
                bytes=marked.increment_bytes,
                count=marked.occurrences,
                pid=run.pid,
                stages=("line_profile",),
                visible_to_tracemalloc=profile.backend == "tracemalloc",
                text=marked.text.strip(),
            ),
        )
    if outcome.problem:
        message += f"; {outcome.problem}"
    return StageReport(kind, "ok", message, suspects=suspects, data=data)


def _relative(path: str | None, base: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path
