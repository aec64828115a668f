"""The report's joined reading of the stages, the commands that reproduce each one, and the artifact index."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leakbench.report.document import Block, Bullets, Code, Heading, Inline, Para, Table, b, c, t
from leakbench.units import and_list, human_bytes

ARTIFACT_KINDS = {
    ".png": "chart or graph",
    ".svg": "chart or graph",
    ".dot": "graph source",
    ".html": "page",
    ".json": "findings",
    ".jsonl": "event log",
    ".tracemalloc": "tracemalloc snapshot",
    ".lbt": "native capture",
    ".txt": "text",
    ".log": "log",
}


def reading_blocks(evidence: Mapping[str, Any]) -> list[Block]:
    """What the stages say together: agreement, growth only native code sees, bounded growth."""
    items: list[Inline] = []
    for s in evidence.get("suspects", [])[:3]:
        where = f"{Path(s['file']).name}:{s['line']}"
        if len(s["stages"]) >= 2 and s.get("trend") in ("steady", "failed", "peak"):
            items.append(
                (
                    b("High confidence:"),
                    t(f" {and_list(s['stages'])} {'both' if len(s['stages']) == 2 else 'all'} point at "),
                    c(where),
                    t(f" ({s['function']})."),
                ),
            )
        if "native" in s["stages"] and not s["visible_to_tracemalloc"] and s.get("trend") == "steady":
            via = f" through {s['native_frames'][0]}" if s.get("native_frames") else ""
            items.append(
                (
                    b("C-level:"),
                    t(" "),
                    c(where),
                    t(f" holds {human_bytes(s['bytes'])}{via} that tracemalloc does not see: the memory is "
                      "allocated by native code (a C extension or library), so fix it there or in how it is called."),
                )
            )  # fmt: skip
        if s.get("trend") == "failed":
            items.append(
                (b("Out of memory at:"), t(" "), c(where), t(f" asked for {human_bytes(s['bytes'])} and was refused."))
            )
    verdict = evidence["verdict"]
    if verdict["kind"] == "no-leak" and verdict["pattern"] == "plateau":
        items.append(
            (b("Bounded:"), t(" memory rose and levelled off; that is a cache or warm-up filling up, not a leak."))
        )
    for reason in verdict.get("reasons", []):
        if "allocator keeps freed memory" in reason:
            items.append((b("Allocator, not a leak:"), t(" " + reason)))
    if not items:
        return []
    return [Heading(2, "Reading across the stages"), Bullets(tuple(items))]


def reproduce_commands(
    target_argv: Sequence[str], playbook: str, stages: Sequence[str], top: Mapping[str, Any] | None
) -> dict[str, str]:
    """One command per stage that reproduces what it did, by hand or with leakbench alone."""
    program = shlex.join(["python", *target_argv[1:]])
    run = list(target_argv[1:])
    out = {"target": program, "investigation": shlex.join(["leakbench", "investigate", "--playbook", playbook, *run])}
    for name in stages:
        kind = name.split("-")[0]
        if kind == "tracemalloc":
            out[name] = shlex.join(["python", "-X", "tracemalloc=25", *run])
        elif kind == "native":
            out[name] = shlex.join(["leakbench", "native", "run", "-o", "capture.%p.lbt", *run]) + (
                " && leakbench native report capture.<pid>.lbt"
            )
        elif kind == "backrefs":
            out[name] = shlex.join(["leakbench", "backrefs", "--type", "TYPE", *run])
        elif kind == "line_profile" and top:
            out[name] = shlex.join(["leakbench", "lineprofile", "--function", f"{top['file']}:{top['function']}", *run])
        elif kind == "rss":
            out[name] = shlex.join(["leakbench", "investigate", "--playbook", "quick", *run])
    return out


def reproduce_blocks(evidence: Mapping[str, Any]) -> list[Block]:
    rep = evidence.get("reproduce", {})
    blocks: list[Block] = [Heading(2, "Reproduce")]
    for name, command in rep.get("stages", {}).items():
        blocks.append(Para((b(name), t(":"))))
        blocks.append(Code(command))
    return blocks


def artifact_blocks(evidence: Mapping[str, Any]) -> list[Block]:
    rows = tuple(
        ((c(a["path"]),), (t(a["kind"]),), (t(human_bytes(a["bytes"])),)) for a in evidence.get("artifacts", [])
    )
    if not rows:
        return []
    return [Heading(2, "Artifacts"), Table(("file", "what", "size"), rows)]


def list_artifacts(run_dir: Path) -> list[dict[str, Any]]:
    """Every file the run left, relative to its directory, with what it is."""
    out = []
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or path.name in ("report.md", "report.html", "evidence.json") or "channel" in path.parts:
            continue
        kind = next((k for suffix, k in ARTIFACT_KINDS.items() if path.name.endswith(suffix)), "file")
        if ".lbt" in path.name:
            kind = "native capture"
        out.append({"path": str(path.relative_to(run_dir)), "kind": kind, "bytes": path.stat().st_size})
    return out
