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
from typing import Any

from leakbench.analysis.model import StageReport, to_jsonable
from leakbench.errors import UsageError
from leakbench.launcher import LiveRun, RunRequest, TargetRun, launch
from leakbench.playbook import Playbook
from leakbench.report.evidence import compile_evidence, write_outputs
from leakbench.stages.base import Contribution, RunOptions, Stage, StageContext, registry
from leakbench.target import TargetSpec


@dataclass(slots=True)
class Progress:
    """Callbacks the CLI uses to show what is happening; all optional."""

    stage_started: Callable[[str, str], None] = lambda _name, _what: None
    tick: Callable[[str, float], None] = lambda _name, _elapsed: None
    stage_done: Callable[[StageReport], None] = lambda _report: None
    log: Callable[[str], None] = lambda _msg: None


@dataclass(slots=True)
class Outcome:
    run_dir: Path
    evidence: dict[str, Any]
    reports: dict[str, StageReport] = field(default_factory=dict)


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


def investigate(
    target: TargetSpec,
    playbook: Playbook,
    run_dir: Path,
    options: RunOptions,
    progress: Progress | None = None,
) -> Outcome:
    """Run every stage of the playbook against the target and write the report into run_dir."""
    progress = progress or Progress()
    stages: list[Stage] = [registry()[spec.kind].factory(spec.params) for spec in playbook.stages]
    names = _names(stages)
    ctx = StageContext(target=target, run_dir=run_dir, options=options, log=progress.log)
    _write_meta(run_dir, target, playbook, options)
    runs: list[TargetRun] = []
    reports: dict[str, StageReport] = {}
    for group in plan(stages):
        members = [stages[i] for i in group]
        label = " + ".join(names[i] for i in group)
        run: TargetRun | None = None
        if not members[0].own_run:
            progress.stage_started(label, "running the target")
            parts = [m.contribute(ctx) for m in members]
            run = _shared_run(ctx, parts, f"run-{len(runs) + 1}", label, progress)
            runs.append(run)
        for index, stage in zip(group, members, strict=True):
            name = names[index]
            if stage.own_run:
                progress.stage_started(name, stage.summary)
            report = _finish(ctx, stage, name, run)
            reports[name] = report
            ctx.earlier[name] = report
            _save_stage(run_dir, report)
            progress.stage_done(report)
    evidence = compile_evidence(target, runs, reports, playbook=playbook.name, run_dir=run_dir)
    write_outputs(run_dir, evidence)
    return Outcome(run_dir, evidence, reports)


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
        rss_interval=min(intervals) if intervals else 0.1,
        stop_policies=tuple(policy for p in parts for policy in p.stop_policies),
    )

    def on_tick(live: LiveRun) -> None:
        progress.tick(label, live.elapsed)

    return launch(ctx.target, request, ctx.run_dir / "runs" / name, on_tick=on_tick)


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
