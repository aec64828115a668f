"""The one module that wires an investigation in order.

playbook → target runs → stages → evidence → report.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leakbench.analysis.findings import RunView, join, merge_suspects, traced_growth
from leakbench.analysis.model import StageReport, stage_report_from_json, to_jsonable
from leakbench.analysis.verdict import ProcessTrend
from leakbench.errors import RunDirError, UsageError
from leakbench.launcher import LiveRun, RunRequest, TargetRun, attach_run, launch, load_run, stderr_tail
from leakbench.playbook import Playbook
from leakbench.playbook import parse as parse_playbook
from leakbench.report.evidence import compile_evidence, write_outputs
from leakbench.stages.base import Contribution, RunOptions, Stage, StageContext, registry
from leakbench.stages.rss import run_trends
from leakbench.target import TargetSpec


@dataclass(slots=True)
class Progress:
    """Callbacks the CLI uses to show what is happening; all optional."""

    stage_started: Callable[[str, str], None] = lambda _name, _what: None
    tick: Callable[[str, float], None] = lambda _name, _elapsed: None
    stage_done: Callable[[StageReport], None] = lambda _report: None
    log: Callable[[str], None] = lambda _msg: None
    watch: Callable[[str, LiveRun], None] = lambda _name, _live: None  # the live view
    stop_requested: Callable[[], str | None] = lambda: None  # a reason to stop the run now (the live view's q)


@dataclass(frozen=True, slots=True)
class _AskedToStop:
    """The stop policy behind the progress's stop_requested."""

    progress: Progress

    def should_stop(self, live: LiveRun) -> str | None:
        return self.progress.stop_requested()


@dataclass(slots=True)
class Outcome:
    run_dir: Path
    evidence: dict[str, Any]
    reports: dict[str, StageReport] = field(default_factory=dict)
    complete: bool = True


def new_run_dir(base: Path, target: TargetSpec) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = base / f"{target.name}-{stamp}"
    n = 2
    while candidate.exists():
        candidate = base / f"{target.name}-{stamp}-{n}"
        n += 1
    return candidate


def prepare_run_dir(run_dir: Path) -> Path:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {run_dir}: cannot write there ({exc.strerror})") from None
    if (run_dir / "evidence.json").exists():
        raise UsageError(f"--out {run_dir}: already holds a report", hint="choose a new folder")
    return run_dir.resolve()


def _names(stages: Sequence[Stage]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for stage in stages:
        seen[stage.kind] = seen.get(stage.kind, 0) + 1
        out.append(stage.kind if seen[stage.kind] == 1 else f"{stage.kind}-{seen[stage.kind]}")
    return out


def _alone(stage: Stage) -> bool:
    return stage.own_run or bool(getattr(stage, "exclusive", False))


def plan(stages: Sequence[Stage]) -> list[list[int]]:
    """Group consecutive ride-along stages into one target run; own-run and exclusive stages stand alone."""
    groups: list[list[int]] = []
    for index, stage in enumerate(stages):
        last = groups[-1][0] if groups else None
        if _alone(stage) or last is None or _alone(stages[last]):
            groups.append([index])
        else:
            groups[-1].append(index)
    return groups


Decision = Literal["continue", "skip", "rerun", "quit"]
STATE = "state.json"


@dataclass(frozen=True, slots=True)
class Pause:
    """What a guided run shows between stages: what they found, and what comes next."""

    done: tuple[StageReport, ...]
    next_label: str
    next_summary: str


Stepper = Callable[[Pause], Decision]


def investigate(
    target: TargetSpec,
    playbook: Playbook,
    run_dir: Path,
    options: RunOptions,
    progress: Progress | None = None,
    stepper: Stepper | None = None,
) -> Outcome:
    """Run every stage of the playbook against the target and write the report into run_dir.

    With a `stepper`, it pauses after each stage (or each group of stages sharing a target run) and asks
    what to do next; the state is kept in run_dir/state.json so that `resume` can go on later.
    """
    state = {
        "version": 1,
        "playbook": {"name": playbook.name, "source": playbook.source, "text": playbook.text},
        "target": to_jsonable(target),
        "options": to_jsonable(options),
        "next_group": 0,
        "runs": [],
        "group_runs": {},  # group index -> the name of its target run: a rerun replaces it
        "skipped": [],
        "finished": False,
    }
    _write_meta(run_dir, target, playbook, options)
    return _drive(run_dir, target, playbook, options, state, {}, progress or Progress(), stepper)


def resume(run_dir: Path, progress: Progress | None = None, stepper: Stepper | None = None) -> Outcome:
    """Go on with a run directory whose investigation stopped (a quit guided run, or an interruption)."""
    path = run_dir / STATE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a resumable run directory (no {STATE})")
    try:
        state = json.loads(path.read_text())
        book = parse_playbook(state["playbook"]["text"], state["playbook"]["source"])
        raw_target = state["target"]
        target = TargetSpec(**{**raw_target, "args": tuple(raw_target["args"])})
        options = RunOptions(**state["options"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: unreadable ({exc})") from None
    reports = {
        p.stem: stage_report_from_json(json.loads(p.read_text())) for p in sorted((run_dir / "stages").glob("*.json"))
    }
    return _drive(run_dir, target, book, options, state, reports, progress or Progress(), stepper)


def _drive(
    run_dir: Path,
    target: TargetSpec,
    playbook: Playbook,
    options: RunOptions,
    state: dict[str, Any],
    reports: dict[str, StageReport],
    progress: Progress,
    stepper: Stepper | None,
) -> Outcome:
    stages: list[Stage] = [registry()[spec.kind].factory(spec.params) for spec in playbook.stages]
    names = _names(stages)
    ctx = StageContext(target=target, run_dir=run_dir, options=options, log=progress.log)
    groups = plan(stages)
    runs = {name: load_run(run_dir / "runs" / name) for name in state["runs"]}
    done_names = {names[i] for g in groups[: state["next_group"]] for i in g}
    ctx.earlier.update({n: r for n, r in reports.items() if n in done_names})
    index = state["next_group"]
    group_runs: dict[str, str] = state.setdefault("group_runs", {})
    while index < len(groups):
        group = groups[index]
        # A group run again (a rerun, or a resumed run interrupted in it) replaces what it left before.
        replaced = group_runs.pop(str(index), None)
        _discard(run_dir, runs, replaced)
        if replaced is not None:
            state.get("run_stages", {}).pop(replaced, None)
        for i in group:
            reports.pop(names[i], None)
            ctx.earlier.pop(names[i], None)
        before = set(runs)
        finished = _run_group(ctx, stages, names, group, runs, progress, skip=set(state["skipped"]))
        for name in runs:
            if name not in before:
                group_runs[str(index)] = name
                state.setdefault("run_stages", {})[name] = [names[i] for i in group if names[i] not in state["skipped"]]
        for report in finished:
            reports[report.name] = report
            ctx.earlier[report.name] = report
        state["runs"] = list(runs)
        state["next_group"] = index + 1
        _save_state(run_dir, state)
        if stepper is None or index + 1 >= len(groups):
            index += 1
            continue
        upcoming = groups[index + 1]
        label = " + ".join(names[i] for i in upcoming)
        decision = stepper(Pause(tuple(finished), label, _what_next(stages, upcoming, reports)))
        if decision == "rerun":
            state["next_group"] = index
            _save_state(run_dir, state)
            continue  # the group's run and reports are replaced at the top of the loop
        if decision == "skip":
            state["skipped"] = [*state["skipped"], *(names[i] for i in upcoming)]
        if decision == "quit":
            break
        index += 1
    state["finished"] = state["next_group"] >= len(groups)
    _save_state(run_dir, state)
    ordered = {names[i]: reports[names[i]] for g in groups for i in g if names[i] in reports}
    run_stages = state.get("run_stages", {})
    views = [run_view(n, runs[n], run_stages.get(n, ())) for n in state["runs"]]
    findings = join(views, ordered, memory_limit=target.memory_limit_bytes, traced_growth=traced_growth(ordered))
    first = runs[state["runs"][0]] if state["runs"] else None  # whose ending the report tells
    evidence = compile_evidence(
        target,
        findings,
        ordered,
        playbook=playbook.name,
        run_dir=run_dir,
        hello=first.hello() if first else None,
        stderr_tail=stderr_tail(first.folder) if first else "",
    )
    evidence["complete"] = state["finished"]
    write_outputs(run_dir, evidence)
    return Outcome(run_dir, evidence, ordered, complete=state["finished"])


def run_view(name: str, run: TargetRun, stages: Sequence[str]) -> RunView:
    """What the verdict reads of one target run: its stages, its ending and each process's RSS trend."""
    trends, _adjusted, _warmups = run_trends(run)
    processes = tuple(
        ProcessTrend(
            pid=s.pid,
            role=s.role,
            trend=trends[s.pid],
            samples=len(s.times),
            rss_series=s.rss,
            vms_now=s.vms[-1] if s.vms else 0,
        )
        for s in run.series
        if s.pid in trends
    )
    return RunView(name, tuple(stages), run.exit, run.duration_s, processes)


def _discard(run_dir: Path, runs: dict[str, TargetRun], name: str | None) -> None:
    """Set a replaced run aside: it is in no list, no evidence and no report any more."""
    if name is None:
        return
    runs.pop(name, None)
    folder = run_dir / "runs" / name
    if folder.is_dir():
        n = 1
        while (aside := run_dir / "discarded" / f"{name}-{n}").exists():
            n += 1
        aside.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(aside)


def _next_run_name(run_dir: Path, runs: dict[str, TargetRun]) -> str:
    """A name no run of this directory has: a folder left by an interrupted run is set aside."""
    n = len(runs) + 1
    while f"run-{n}" in runs:
        n += 1
    name = f"run-{n}"
    if (run_dir / "runs" / name).exists():
        _discard(run_dir, {}, name)
    return name


def _run_group(
    ctx: StageContext,
    stages: Sequence[Stage],
    names: Sequence[str],
    group: Sequence[int],
    runs: dict[str, TargetRun],
    progress: Progress,
    skip: set[str],
) -> list[StageReport]:
    """Run one group: a shared target run and its stages' analyses, or one own-run stage."""
    active = [i for i in group if names[i] not in skip]
    out = [StageReport(names[i], "skipped", "skipped in the guided run") for i in group if names[i] in skip]
    if not active:
        for report in out:
            _save_stage(ctx.run_dir, report)
        return out
    if ctx.options.attach_pid is not None:
        # Attached to a running process: only stages that ride along a run can watch it
        cannot = [i for i in active if _alone(stages[i]) and not _rss_alone(stages[i])]
        for i in cannot:
            report = StageReport(names[i], "skipped", _NOT_ATTACHABLE.get(stages[i].kind, _NOT_ATTACHABLE[""]))
            out.append(report)
            progress.stage_done(report)
        active = [i for i in active if i not in cannot]
        if not active:
            for report in out:
                _save_stage(ctx.run_dir, report)
            return out
    members = [stages[i] for i in active]
    label = " + ".join(names[i] for i in active)
    run: TargetRun | None = None
    if not members[0].own_run:
        progress.stage_started(label, "running the target")
        parts = [m.contribute(ctx) for m in members]
        name = _next_run_name(ctx.run_dir, runs)
        run = _shared_run(ctx, parts, name, label, progress)
        runs[name] = run
    for index, stage in zip(active, members, strict=True):
        if stage.own_run:
            progress.stage_started(names[index], stage.summary)
        report = _finish(ctx, stage, names[index], run)
        out.append(report)
        progress.stage_done(report)
    for report in out:
        _save_stage(ctx.run_dir, report)
    return out


_NOT_ATTACHABLE = {
    "native": "the native tracker is preloaded when a program starts and cannot be loaded into a running "
    "process yet: run the service under `leakbench investigate --playbook native` to see C allocations",
    "line_profile": "the line profile runs its own process (a repro): run it with `leakbench lineprofile`",
    "": "this stage runs its own process, which an attached investigation does not start",
}


def _rss_alone(stage: Stage) -> bool:
    return stage.kind == "rss"


def _what_next(stages: Sequence[Stage], group: Sequence[int], reports: dict[str, StageReport]) -> str:
    """One sentence on what the next stage will do with what was found so far."""
    suspects = merge_suspects(reports)
    top = f"{Path(suspects[0].file).name}:{suspects[0].line} ({suspects[0].function})" if suspects else None
    parts = []
    for i in group:
        stage = stages[i]
        hint = {
            "native": "rerun the target with the C tracker preloaded, to see allocations tracemalloc cannot",
            "line_profile": f"profile {top.split(' ')[1] if top else 'the suspect function'} line by line "
            "on a short repro",
            "backrefs": "look for the reference chains that keep the growing objects alive",
        }.get(stage.kind, stage.summary)
        parts.append(f"{stage.kind}: {hint}")
    lead = f"Top suspect so far: {top}. " if top else ""
    return lead + "; ".join(parts)


def _save_state(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(run_dir / STATE)


def _shared_run(
    ctx: StageContext, parts: Sequence[Contribution], name: str, label: str, progress: Progress
) -> TargetRun:
    intervals = [p.rss_interval for p in parts if p.rss_interval]
    env: dict[str, str] = {}
    for p in parts:
        env.update(p.env)
    request = RunRequest(
        name=name,
        probes=tuple(probe for p in parts for probe in p.probes),
        env=env,
        duration=ctx.options.duration,
        load=ctx.options.load,
        rss_interval=min(intervals) if intervals else 0.1,
        stop_policies=(*(policy for p in parts for policy in p.stop_policies), _AskedToStop(progress)),
    )

    def on_tick(live: LiveRun) -> None:
        progress.tick(label, live.elapsed)
        progress.watch(label, live)

    folder = ctx.run_dir / "runs" / name
    if ctx.options.attach_pid is not None:
        return attach_run(
            ctx.options.attach_pid, request, folder, cwd=ctx.target.cwd, on_tick=on_tick, on_stop=progress.log
        )
    return launch(ctx.target, request, folder, on_tick=on_tick, on_stop=progress.log)


def _finish(ctx: StageContext, stage: Stage, name: str, run: TargetRun | None) -> StageReport:
    """A stage that fails is reported as failed; the others still make the report."""
    try:
        report = stage.finish(ctx, run)
    except Exception as exc:
        detail = traceback.format_exc()
        (ctx.stage_dir(name) / "error.txt").write_text(detail)
        if ctx.options.debug:
            ctx.log(detail)
        return StageReport(name, "failed", f"{type(exc).__name__}: {exc}")
    if report.name != name:
        report = StageReport(name, report.status, report.message, report.suspects, report.retention, report.data)
    return report


def _save_stage(run_dir: Path, report: StageReport) -> None:
    path = run_dir / "stages" / f"{report.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(report), indent=2))


def _write_meta(run_dir: Path, target: TargetSpec, playbook: Playbook, options: RunOptions) -> None:
    meta = {
        "target": to_jsonable(target),
        "playbook": {"name": playbook.name, "source": playbook.source},
        "options": to_jsonable(options),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (run_dir / "investigation.json").write_text(json.dumps(meta, indent=2))
