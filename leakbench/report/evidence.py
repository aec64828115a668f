"""Join the stage reports into evidence.json (schema leakbench.evidence/1) and write the report files."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leakbench import __version__
from leakbench.analysis.model import SCHEMA, StageReport, Suspect, TargetExit, Trend, to_jsonable
from leakbench.analysis.trend import analyse_series
from leakbench.analysis.verdict import ProcessTrend, decide
from leakbench.launcher import TargetRun, stderr_tail
from leakbench.report.build import build_blocks
from leakbench.report.document import to_html, to_markdown
from leakbench.report.reading import list_artifacts, reproduce_commands
from leakbench.target import TargetSpec


def merge_suspects(reports: Mapping[str, StageReport]) -> list[Suspect]:
    """One entry per source line, whichever run (and pid) each stage saw it in.

    Ranked: the line whose allocation failed first, then steady growth before one-off allocations, then
    by bytes, with a site that several stages agree on counting half as much again.
    """
    merged: dict[tuple[str, int], Suspect] = {}
    for report in reports.values():
        for s in report.suspects:
            key = (s.file, s.line)
            if key not in merged:
                merged[key] = s
                continue
            old = merged[key]
            merged[key] = Suspect(
                file=old.file,
                line=old.line,
                function=old.function or s.function,
                bytes=max(old.bytes, s.bytes),
                count=max(old.count, s.count),
                pid=old.pid,
                stages=tuple(dict.fromkeys(old.stages + s.stages)),
                visible_to_tracemalloc=old.visible_to_tracemalloc or s.visible_to_tracemalloc,
                native_frames=old.native_frames or s.native_frames,
                text=old.text or s.text,
                bytes_per_interval=old.bytes_per_interval or s.bytes_per_interval,
                count_per_interval=old.count_per_interval or s.count_per_interval,
                grew_in=max(old.grew_in, s.grew_in),
                trend=_stronger(old.trend, s.trend),
                rate_bytes_per_s=max(old.rate_bytes_per_s, s.rate_bytes_per_s),
                traceback=old.traceback or s.traceback,
            )
    return sorted(merged.values(), key=_rank_key)


_TREND_ORDER = ("failed", "steady", "peak", "plateau", "one-off", "")


def _stronger(a: str, b: str) -> str:
    return min(a, b, key=lambda t: _TREND_ORDER.index(t) if t in _TREND_ORDER else len(_TREND_ORDER))


def _rank_key(s: Suspect) -> tuple[int, int, float]:
    agreement = 1.5 if len(s.stages) > 1 else 1.0
    return (s.trend != "failed", s.trend not in ("steady", "peak"), -s.bytes * agreement)


def _process_trends(run: TargetRun | None, rss: StageReport | None) -> list[ProcessTrend]:
    if run is None or rss is None or rss.status != "ok":
        return []
    trends = rss.data.get("trends", {})
    out = []
    for series in run.series:
        raw = trends.get(str(series.pid))
        if raw is None:
            continue
        out.append(
            ProcessTrend(
                pid=series.pid,
                role=series.role,
                trend=Trend(**raw),
                samples=len(series.times),
                rss_series=series.rss,
                vms_now=series.vms[-1] if series.vms else 0,
            )
        )
    return out


def _native_live(reports: Mapping[str, StageReport]) -> int | None:
    native = reports.get("native")
    if native is None or native.status != "ok":
        return None
    main = next((p for p in native.data.get("processes", []) if p.get("role") == "main"), None)
    return None if main is None else int(main["leaked_bytes"]) + int(main["interpreter_arena_bytes"])


def _traced_growth(reports: Mapping[str, StageReport]) -> dict[int, Trend]:
    tm = reports.get("tracemalloc")
    if tm is None or tm.status != "ok":
        return {}
    out = {}
    for pid, rows in tm.data.get("heap", {}).items():
        if len(rows) >= 3:
            out[int(pid)] = analyse_series([r[0] for r in rows], [r[1] for r in rows])
    return out


def compile_evidence(
    target: TargetSpec,
    runs: Sequence[TargetRun],
    reports: Mapping[str, StageReport],
    *,
    playbook: str,
    run_dir: Path,
) -> dict[str, Any]:
    primary = runs[0] if runs else None
    rss = reports.get("rss")
    processes = _process_trends(primary, rss)
    suspects = merge_suspects(reports)
    failed = sum(int(r.data.get("failed_allocations", 0) or 0) for r in reports.values())
    exit_ = primary.exit if primary else TargetExit(None, None, "ok")
    verdict = decide(
        processes,
        exit_,
        suspects,
        memory_limit=target.memory_limit_bytes,
        failed_allocations=failed,
        traced_growth=_traced_growth(reports),
        native_live_bytes=_native_live(reports),
    )
    retention = [r for report in reports.values() for r in report.retention]
    return {
        "schema": SCHEMA,
        "verdict": {
            "kind": verdict.kind,
            "confidence": verdict.confidence,
            "growth_bytes_per_s": round(verdict.growth_bytes_per_s, 1),
            "pattern": verdict.pattern,
            "summary": verdict.summary,
            "seconds_to_limit": verdict.seconds_to_limit,
            "reasons": list(verdict.reasons),
        },
        "target": {
            "argv": target.argv,
            "exit": {
                "code": exit_.code,
                "signal": exit_.signal,
                "status": exit_.status,
                "exception": (
                    {"type": exit_.exception_type, "message": exit_.exception_message} if exit_.exception_type else None
                ),
                "stopped_by": exit_.stopped_by,
                "description": exit_.describe(),
                "traceback": to_jsonable(exit_.traceback),
                # the last lines the target wrote to stderr (capped), beside how it ended
                "stderr_tail": stderr_tail(primary.folder) if primary else "",
            },
            "memory_limit_bytes": target.memory_limit_bytes,
            "duration_s": round(primary.duration_s, 3) if primary else None,
        },
        "processes": [
            {
                "pid": p.pid,
                "role": p.role,
                "peak_rss_bytes": p.trend.peak_bytes,
                "growth_bytes_per_s": round(p.trend.slope_bytes_per_s, 1),
                "pattern": p.trend.pattern,
            }
            for p in processes
        ],
        "suspects": [to_jsonable(s) for s in suspects],
        "retention": [to_jsonable(r) for r in retention],
        "stages": {name: {"status": r.status, "message": r.message} for name, r in reports.items()},
        "playbook": playbook,
        "reproduce": {
            "target": shlex.join(target.argv),
            "leakbench": shlex.join(_leakbench_command(target, playbook)),
            "stages": reproduce_commands(
                target.argv, playbook, list(reports), to_jsonable(suspects[0]) if suspects else None
            ),
        },
        "environment": {
            "leakbench": __version__,
            "python": primary.hello().get("python") if primary else None,
            "interpreter": target.python,
            "launcher_python": sys.version.split()[0],
            "platform": platform.platform(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "run_dir": str(run_dir),
    }


def _leakbench_command(target: TargetSpec, playbook: str) -> list[str]:
    cmd = ["leakbench", "investigate", "--playbook", playbook]
    if target.memory_limit_bytes:
        cmd += ["--memory-limit", str(target.memory_limit_bytes)]
    cmd += ["-m", target.module] if target.module else [target.script or ""]
    return cmd + list(target.args)


def load_stage_details(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((run_dir / "stages").glob("*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out


def write_outputs(run_dir: Path, evidence: Mapping[str, Any]) -> None:
    """evidence.json, report.md and report.html, all from the same evidence and stage details."""
    evidence = {**evidence, "artifacts": list_artifacts(run_dir)}
    (run_dir / "evidence.json").write_text(json.dumps(evidence, indent=2))
    render_reports(run_dir, evidence)


def render_reports(run_dir: Path, evidence: Mapping[str, Any]) -> None:
    blocks = build_blocks(evidence, load_stage_details(run_dir))
    (run_dir / "report.md").write_text(to_markdown(blocks))
    title = "leakbench report: " + " ".join(evidence["target"]["argv"][1:])
    (run_dir / "report.html").write_text(to_html(blocks, run_dir, title))
