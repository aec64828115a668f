"""Standalone use of the tracker, like `memray run` and `memray flamegraph`: run a program into a capture,
and turn a capture into a report, without an investigation around them."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from leakbench.analysis.model import to_jsonable
from leakbench.launcher import AGENT_DIR, Probe, RunRequest, TargetRun, launch
from leakbench.native.capture import compact_capture, find_captures, read_capture
from leakbench.native.runner import preload_env
from leakbench.report.document import Block, Heading, Para, Table, c, t, to_html, to_markdown
from leakbench.report.native_section import native_blocks
from leakbench.stages.native import analyse_capture, library_rules
from leakbench.target import TargetSpec
from leakbench.units import human_bytes

Format = Literal["md", "html", "json"]


@dataclass(frozen=True, slots=True)
class NativeRun:
    run: TargetRun
    captures: tuple[Path, ...]


def run_tracked(target: TargetSpec, capture: Path) -> NativeRun:
    """Run the target with the tracker preloaded; `capture` may hold `%p` for the pid."""
    capture.parent.mkdir(parents=True, exist_ok=True)
    env = preload_env(str(capture), base={})
    request = RunRequest(name="native", probes=(Probe("native", str(AGENT_DIR / "native_probe.py")),), env=env)
    with tempfile.TemporaryDirectory(prefix="leakbench-native-") as folder:
        run = launch(target, request, Path(folder))
    paths = tuple(find_captures(capture))
    for path in paths:
        compact_capture(path)
    return NativeRun(run, paths)


def report_capture(path: Path, fmt: Format, out_dir: Path | None = None) -> str:
    """The report of one capture as Markdown, a self-contained HTML page, or JSON."""
    capture = read_capture(path)
    out_dir = out_dir or path.parent
    suspects, summary = analyse_capture(capture, path, rules=library_rules(), out_dir=out_dir)
    if fmt == "json":
        return json.dumps({"capture": summary, "suspects": [to_jsonable(s) for s in suspects]}, indent=2)
    blocks = _blocks(path, suspects, summary)
    if fmt == "html":
        return to_html(blocks, out_dir, f"leakbench native report: {path.name}")
    return to_markdown(blocks)


def _blocks(path: Path, suspects: list[Any], summary: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(1, f"leakbench native report: {path.name}")]
    if suspects:
        rows = tuple(
            (
                (c(f"{Path(s.file).name}:{s.line}"),),
                (t(s.function),),
                (t(human_bytes(s.bytes)),),
                (t(f"{s.count:,}"),),
                (c(" ← ".join(s.native_frames[:3])),) if s.native_frames else (),
            )
            for s in suspects[:10]
        )
        blocks.append(Para((t("Where the memory still live at the end was allocated (the user's line first):"),)))
        blocks.append(Table(("line", "function", "bytes", "blocks", "native frames"), rows))
    blocks += native_blocks({"native": {"status": "ok", "data": {"processes": [summary]}}})
    return blocks
