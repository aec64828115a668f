"""The report's section on the line_profile stage: memory_profiler's table of the suspect function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leakbench.report.document import Block, Heading, Inline, Para, Table, b, c, t
from leakbench.units import human_bytes

ROWS_SHOWN = 60
MARK = "◀ most"


def line_profile_blocks(details: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    stage = details.get("line_profile")
    if stage is None:
        return []
    data = stage.get("data", {})
    blocks: list[Block] = [Heading(2, "Line by line in the suspect function (memory_profiler)")]
    if stage.get("status") != "ok":
        blocks.append(Para((t(f"The line_profile stage did not complete: {stage.get('message', '')}"),)))
        return blocks
    blocks.append(Para(_intro(data)))
    if data.get("never_called"):
        blocks.append(Para((b("The function never ran in the repro. "), t(stage.get("message", "")))))
        return blocks
    rows = data.get("table", [])
    if rows:
        blocks.append(Table(("line", "mem usage", "increment", "occurrences", "line contents"), _rows(rows)))
    marked = data.get("marked")
    if marked:
        spans: list[Any] = [
            t("Line "),
            b(str(marked["line"])),
            t(f" added the most: +{human_bytes(marked['increment_bytes'])} over {marked['occurrences']:,} runs"),
        ]
        if marked.get("share"):
            spans.append(t(f" ({marked['share']:.0%} of what the calls kept)"))
        spans += [t(": "), c(marked["text"])]
        if marked.get("is_top_suspect"):
            spans.append(t(" — the same line as the top suspect."))
        else:
            spans.append(t("."))
        blocks.append(Para(tuple(spans)))
    elif rows:
        blocks.append(Para((t("No line of the function kept memory over these calls."),)))
    if data.get("backend_note"):
        blocks.append(Para((b(f"Backend {data.get('backend')}:"), t(" " + data["backend_note"]))))
    if data.get("text"):
        blocks.append(Para((t("memory_profiler's own rendering of the table: "), c(data["text"]), t("."))))
    return blocks


def _intro(data: Mapping[str, Any]) -> Inline:
    profiled = data.get("profiled") or data.get("function", {})
    where = f"{Path(profiled.get('file') or '?').name}:{profiled.get('line') or '?'}"
    repro = data.get("repro", {})
    spans = [
        t("Profiled "),
        c(str(profiled.get("qualname", "?"))),
        t(f" ({where}) because {data.get('chosen_because', '')}"),
    ]
    if data.get("via"):
        spans.append(t(f"; {data['via']} is library code, so its caller in your code was profiled instead"))
    spans += [t(". A single-process run of "), c(" ".join(repro.get("argv", [])[1:]))]
    if repro.get("stopped"):
        spans.append(t(f", stopped {repro['stopped']} ({repro.get('duration_s', 0):.1f} s)."))
    else:
        spans.append(t("."))
    return tuple(spans)


def _rows(rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[Inline, ...], ...]:
    shown = list(rows)
    if len(shown) > ROWS_SHOWN:  # a long function: the lines that moved memory most, in source order
        keep = sorted(shown, key=lambda r: abs(r["increment_bytes"]), reverse=True)[:ROWS_SHOWN]
        shown = [r for r in shown if r in keep]
    out = []
    for r in shown:
        inc = human_bytes(r["increment_bytes"])
        out.append(
            (
                (b(str(r["line"])),) if r.get("marked") else (t(str(r["line"])),),
                (t(human_bytes(r["mem_bytes"])),),
                (b(f"{inc} {MARK}"),) if r.get("marked") else (t(inc),),
                (t(f"{r['occurrences']:,}"),),
                (c(r["text"].rstrip()),) if r.get("text", "").strip() else (),
            )
        )
    return tuple(out)
