"""The report's section on the native tracker's findings (from the `native` stage's details)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leakbench.report.document import Block, Code, Embed, Heading, Image, Para, Table, b, c, t
from leakbench.units import human_bytes, human_rate

FRAMES_SHOWN = 4


def native_blocks(details: Mapping[str, Mapping[str, Any]], evidence: Mapping[str, Any] | None = None) -> list[Block]:
    stage = details.get("native")
    if stage is None:
        return []
    blocks: list[Block] = [Heading(2, "Native allocations (leakbench's tracker)")]
    if stage.get("status") != "ok":
        blocks.append(Para((t(f"The native stage did not complete: {stage.get('message', '')}"),)))
        return blocks
    blocks += _sites_blocks((evidence or {}).get("suspects", []))
    for proc in stage.get("data", {}).get("processes", []):
        blocks += _process_blocks(proc)
    return blocks


def _site_row(s: Mapping[str, Any]) -> tuple[tuple[Any, ...], ...]:
    where = f"{Path(s['file']).name}:{s['line']}"
    native = s.get("native_bytes") or s["bytes"]
    seen = s.get("tracemalloc_bytes") or 0
    return (
        (c(where),),
        (t(s.get("function") or ""),),
        (t(human_bytes(native)),),
        (t(human_rate(s["rate_bytes_per_s"]) if s.get("rate_bytes_per_s") else ""),),
        (t(f"{max(0, native - seen) / native:.0%}" if native else ""),),
        (c(" ← ".join(s.get("native_frames", [])[:FRAMES_SHOWN])),) if s.get("native_frames") else (),
    )


def _sites_blocks(suspects: list[Mapping[str, Any]]) -> list[Block]:
    """The lines the native tracker saw keep memory, ranked by what they retained over the run (steady
    growth first), your line first and the native frames below it; what was allocated once stands apart."""
    seen = [s for s in suspects if "native" in s.get("stages", ()) and s.get("trend") != "failed"]
    growing = [s for s in seen if s.get("trend") == "steady"]
    once = [s for s in seen if s.get("trend") != "steady"]
    head = ("line", "function", "still live", "rate", "C-level", "native frames (innermost first)")
    blocks: list[Block] = []
    if growing:
        blocks.append(Para((b("Lines whose native memory kept growing"), t(" over the run, most retained first:"))))
        blocks.append(Table(head, tuple(_site_row(s) for s in growing[:8])))
    if once:
        blocks.append(
            Para((b("Allocated once"), t(" (set-up, caches filled once, buffers made early): live, but not growing:")))
        )
        blocks.append(Table(head, tuple(_site_row(s) for s in once[:5])))
    return blocks


def _process_blocks(p: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    cut = "when its code returned" if p["leak_cut"] == "target-end" else f"at {p['leak_cut']}"
    blocks.append(
        Para(
            (
                b(f"pid {p['pid']} ({p['role']})"),
                t(
                    f": {p['events']:,} allocation events; {human_bytes(p['leaked_bytes'])} in "
                    f"{p['leaked_blocks']:,} blocks allocated by the target and still live {cut}; the interpreter's "
                    f"own arenas held {human_bytes(p['interpreter_arena_bytes'])} more (small Python objects, "
                    f"counted apart). Peak: {human_bytes(p['peak_bytes'])} at {p['peak_ms'] / 1000:.1f} s. "
                    f"Capture {p['capture_state']}."
                ),
            )
        )
    )
    if p.get("python_frames"):
        blocks.append(
            Para((b(p["python_frames"]), t(": no Python line can be named for this process's native memory.")))
        )
    if p.get("failed_allocations"):
        first = p["failures"][0]
        blocks.append(
            Para(
                (
                    b(f"{p['failed_allocations']} allocation(s) failed for lack of memory"),
                    t(f"; the largest asked {human_bytes(first['size'])} through {first['allocator']}:"),
                )
            )
        )
        blocks.append(Code("\n".join(first["frames"])))
    rows = []
    for g in p.get("leaks_top", [])[:8]:
        rows.append(
            (
                (t(human_bytes(g["bytes"])),),
                (t(f"{g['count']:,}"),),
                (c(" ← ".join(g["frames"][:FRAMES_SHOWN])),),
            )
        )
    if rows:
        blocks.append(Table(("still live", "blocks", "stack (innermost first)"), tuple(rows)))
    if p.get("chart"):
        blocks.append(Image(p["chart"], "live native bytes per site"))
    blocks.append(Embed(p["flamegraph"], f"Flame graph of the native memory still live (pid {p['pid']})"))
    return blocks
