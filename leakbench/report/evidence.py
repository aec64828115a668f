"""Render the findings as evidence.json (schema leakbench.evidence/1) and write the report files."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leakbench import __version__
from leakbench.analysis.findings import Findings
from leakbench.analysis.model import SCHEMA, StageReport, to_jsonable
from leakbench.report.build import build_blocks
from leakbench.report.document import to_html, to_markdown
from leakbench.report.reading import list_artifacts, reproduce_commands
from leakbench.target import TargetSpec


def compile_evidence(
    target: TargetSpec,
    findings: Findings,
    reports: Mapping[str, StageReport],
    *,
    playbook: str,
    run_dir: Path,
    hello: Mapping[str, Any] | None = None,
    stderr_tail: str = "",
) -> dict[str, Any]:
    """evidence.json from the findings (decided in analysis.findings); nothing is judged here."""
    verdict = findings.verdict
    exit_ = findings.exit
    suspects = findings.suspects
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
            "judged_on": findings.judged_on,
            "sources": {figure: run for figure, run in findings.sources},
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
                "stderr_tail": stderr_tail,
            },
            "memory_limit_bytes": target.memory_limit_bytes,
            "duration_s": round(findings.duration_s, 3) if findings.duration_s is not None else None,
        },
        "processes": [
            {
                "pid": p.pid,
                "role": p.role,
                "peak_rss_bytes": p.trend.peak_bytes,
                "growth_bytes_per_s": round(p.trend.slope_bytes_per_s, 1),
                "pattern": p.trend.pattern,
                "run": findings.judged_on,
            }
            for p in findings.processes
        ],
        "suspects": [{**to_jsonable(s), "role": findings.role_of(s.pid)} for s in suspects],
        "retention": [{**to_jsonable(r), "role": findings.role_of(r.pid)} for r in findings.retention],
        "stages": {line.name: {"status": line.status, "message": line.message} for line in findings.stages},
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
            "python": (hello or {}).get("python"),
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
