"""The incident report's content, built once from evidence.json and the stage details."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leakbench.report.document import Block, Bullets, Code, Heading, Image, Para, Table, b, c, t
from leakbench.report.line_profile_section import line_profile_blocks
from leakbench.report.native_section import native_blocks
from leakbench.report.reading import artifact_blocks, reading_blocks, reproduce_blocks
from leakbench.units import human_bytes, human_duration, human_rate

TRACEBACKS_SHOWN = 3


def short(path: str) -> str:
    return Path(path).name


def _frames_text(frames: list[dict[str, Any]]) -> str:
    lines = []
    for f in frames:
        lines.append(f'  File "{f["file"]}", line {f["line"]}, in {f.get("function") or "?"}')
        if f.get("text"):
            lines.append(f"    {f['text']}")
    return "\n".join(lines)


def build_blocks(evidence: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    blocks: list[Block] = []
    target = evidence["target"]
    verdict = evidence["verdict"]
    name = " ".join(target["argv"][1:]) or "target"
    blocks.append(Heading(1, f"leakbench report: {name}"))
    first = [b(verdict["kind"].upper()), t(f" (confidence {verdict['confidence']:.2f}). "), t(verdict["summary"])]
    retention = evidence.get("retention") or []
    if retention and verdict["kind"] in ("leak", "oom"):
        worker = ""
        if retention[0].get("role") == "child":  # the root's words may name the pid already
            pid = f" in pid {retention[0]['pid']}"
            worker = " (a worker)" if retention[0]["root"].endswith(pid) else pid + " (a worker)"
        first.append(t(f" Kept alive by {retention[0]['root']}{worker}."))
    blocks.append(Para(tuple(first)))
    blocks += _headline(evidence)
    blocks += reading_blocks(evidence)
    blocks += _retention_section(evidence, details)
    blocks += _memory_section(evidence, details)
    blocks += _growing_section(evidence, details)
    blocks += line_profile_blocks(details)
    blocks += native_blocks(details, evidence)
    blocks += _ending_section(evidence)
    blocks += _stages_section(evidence)
    blocks += reproduce_blocks(evidence)
    blocks += artifact_blocks(evidence)
    blocks += _environment_section(evidence)
    return blocks


def _headline(evidence: Mapping[str, Any]) -> list[Block]:
    items = []
    suspects = evidence["suspects"]
    if suspects:
        s = suspects[0]
        spans = [t("Top suspect: "), c(f"{s['file']}:{s['line']}"), t(f" in {s['function']}")]
        if s.get("text"):
            spans += [t(" — "), c(s["text"])]
        spans.append(t(f" (found by {', '.join(s['stages'])})"))
        if s.get("keeps"):
            spans += [t("; it stores what "), c(s["keeps"]), t(" allocates in the root below")]
        items.append(tuple(spans))
    retention = evidence.get("retention") or []
    if retention:
        r = retention[0]
        items.append((t("Kept alive by: "), b(r["root"]), t(" — "), c(" → ".join(r["chain"]))))
    for reason in evidence["verdict"].get("reasons", []):
        items.append((t(reason),))
    sources = evidence["verdict"].get("sources") or {}
    if sources:
        items.append((t("Where the figures come from: " + "; ".join(f"{k}: {v}" for k, v in sources.items())),))
    return [Bullets(tuple(items))] if items else []


def _memory_section(evidence: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    rss = details.get("rss", {})
    data = rss.get("data", {})
    blocks: list[Block] = [Heading(2, "Memory over time (RSS)")]
    if rss.get("status") != "ok":
        blocks.append(Para((t(f"The RSS stage did not run: {rss.get('message', 'not in this playbook')}."),)))
        return blocks
    if data.get("chart"):
        blocks.append(Image(data["chart"], "RSS over time"))
    rows = []
    for pid, tr in data.get("trends", {}).items():
        role = next((p["role"] for p in evidence["processes"] if str(p["pid"]) == pid), "")
        rows.append(
            (
                (t(pid),),
                (t(role),),
                (t(tr["pattern"]),),
                (t(human_rate(tr["slope_bytes_per_s"])),),
                (t(f"{tr['r_squared']:.2f}"),),
                (t(f"{human_bytes(tr['start_bytes'])} → {human_bytes(tr['end_bytes'])}"),),
                (t(human_bytes(tr["peak_bytes"])),),
            )
        )
    blocks.append(Table(("pid", "role", "pattern", "slope", "R²", "start → end", "peak"), tuple(rows)))
    judged = evidence["verdict"].get("judged_on")
    others = [p for p in evidence["processes"] if str(p["pid"]) not in data.get("trends", {})]
    if judged and others:
        blocks.append(
            Para(
                (
                    t("The table above is the RSS stage's own run. The verdict reads the shape and the rate on "),
                    b(judged),
                    t(", which slows the target least:"),
                )
            )
        )
        blocks.append(
            Table(
                ("pid", "role", "pattern", "slope", "peak"),
                tuple(
                    (
                        (t(str(p["pid"])),),
                        (t(p["role"]),),
                        (t(p.get("pattern", "")),),
                        (t(human_rate(p["growth_bytes_per_s"])),),
                        (t(human_bytes(p["peak_rss_bytes"])),),
                    )
                    for p in others
                ),
            )
        )
    limit = evidence["target"].get("memory_limit_bytes")
    to_limit = evidence["verdict"].get("seconds_to_limit")
    if limit and to_limit is not None:
        blocks.append(
            Para((t(f"At this rate the {human_bytes(limit)} memory limit is reached in ~{human_duration(to_limit)}."),))
        )
    return blocks


def _growing_section(evidence: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    tm = details.get("tracemalloc", {})
    data = tm.get("data", {})
    blocks: list[Block] = [Heading(2, "Lines whose memory keeps growing (tracemalloc)")]
    if tm.get("status") != "ok":
        blocks.append(Para((t(f"The tracemalloc stage did not run: {tm.get('message', 'not in this playbook')}."),)))
        return blocks
    interval = data.get("interval", 1.0)
    blocks.append(
        Para(
            (
                t(
                    f"{data.get('snapshots', 0)} snapshots, one every ~{interval:g} s; "
                    "growth is measured over the "
                    "whole series, and a line counts as steady when it grew in most intervals."
                ),
            )
        )
    )
    windows = data.get("windows") or []
    if windows:
        blocks.append(
            Para(
                (
                    t(
                        "tracemalloc ran in windows (bursts), the target at full speed between them; traces "
                        "restart with each window, so a line's growth is added up over the windows."
                    ),
                )
            )
        )
        window_rows = []
        for w in windows:
            tops = ", ".join(
                f"{short(g['file'])}:{g['line']} +{human_bytes(g['growth_bytes'])}"
                + (" (steady)" if g["steady"] else "")
                for g in w["top"]
            )
            window_rows.append(
                (
                    (t(str(w["index"] + 1)),),
                    (t(str(w["pid"])),),
                    (t(f"{w['start_s']:.0f}–{w['end_s']:.0f} s"),),
                    (t(str(w["snapshots"])),),
                    (t(tops or "nothing grew"),),
                )
            )
        blocks.append(Table(("window", "pid", "from–to", "snapshots", "what grew most"), tuple(window_rows)))
    if data.get("stopped_early"):
        blocks.append(
            Para(
                (
                    t("The target was stopped early ("),
                    b(data["stopped_early"]),
                    t(
                        "): tracemalloc slows allocation-heavy code, "
                        "and the trend was already clear or the budget spent."
                    ),
                )
            )
        )
    rows = []
    for i, g in enumerate(data.get("growing", [])[:10], 1):
        rows.append(
            (
                (t(str(i)),),
                (c(f"{short(g['file'])}:{g['line']}"),),
                (t(g["function"]),),
                (t("+" + human_bytes(g["growth_bytes"])),),
                (t(human_bytes(g["bytes_per_interval"])),),
                (t(f"{g['count_per_interval']:.0f}"),),
                (t(f"{g['grew_in']:.0%}" + (" (then flat)" if g.get("plateaued") else "")),),
                (c(g["text"]),) if g.get("text") else (),
            )
        )
    if rows:
        blocks.append(
            Table(
                ("#", "line", "function", "growth", "per interval", "blocks/interval", "grew in", "code"),
                tuple(rows),
            )
        )
    else:
        blocks.append(Para((t("No Python line kept more memory at the end than at the start."),)))
    if data.get("chart"):
        blocks.append(Image(data["chart"], "live bytes per growing line"))
    for s in [s for s in evidence["suspects"] if s.get("traceback")][:TRACEBACKS_SHOWN]:
        blocks.append(Para((t("Traceback of "), c(f"{short(s['file'])}:{s['line']}"), t(" (oldest call first):"))))
        blocks.append(Code(_frames_text(s["traceback"])))
    peaks = data.get("peaks", [])
    if evidence["verdict"]["kind"] == "oom" and peaks:
        blocks.append(Heading(3, "What held the most memory at any snapshot"))
        blocks.append(
            Table(
                ("line", "bytes", "blocks"),
                tuple(
                    (
                        (c(f"{short(p['file'])}:{p['line']}"),),
                        (t(human_bytes(p["bytes"])),),
                        (t(str(p["count"])),),
                    )
                    for p in peaks
                ),
            )
        )
    return blocks


def _retention_section(evidence: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    br = details.get("backrefs", {})
    data = br.get("data", {})
    blocks: list[Block] = [Heading(2, "What keeps the growing objects alive (backrefs)")]
    if br.get("status") != "ok":
        blocks.append(Para((t(f"The backrefs stage did not run: {br.get('message', 'not in this playbook')}."),)))
        return blocks
    blocks.append(
        Para(
            (
                t(
                    f"{data.get('checkpoints', 0)} counts of the objects the garbage collector tracks, one every "
                    f"~{data.get('interval', 1.0):g} s (at most {data.get('counting_cost_s', 0):.2f} s each), "
                    "without collecting first; then, for the types that grew, objects made during the run were "
                    "sampled and followed back to a root, as were single objects that kept growing in size "
                    "(held by a global, a class attribute or a running function, or made on a line whose live "
                    "memory kept growing)."
                ),
            )
        )
    )
    rows = tuple(
        (
            (c(g["type"]),),
            (t(str(g["pid"])),),
            (t(f"{g['first']} → {g['peak']}" + (f" → {g['last']}" if g["last"] != g["peak"] else "")),),
            (t(f"+{g['count_growth']}"),),
            (t("+" + human_bytes(g["bytes_growth"])),),
            (t(f"{g['grew_in']:.0%}" + (" (freed at the end)" if g.get("freed_at_end") else "")),),
        )
        for g in data.get("growing", [])[:10]
    )
    if rows:
        blocks.append(Table(("type", "pid", "count", "growth", "est. bytes", "grew in"), rows))
    chains = data.get("chains", [])
    if not chains:
        blocks.append(Para((t("No type grew enough to follow."),)))
    for ch in chains:
        blocks.append(Heading(3, f"{ch['type']} (pid {ch['pid']}, {ch['role']})"))
        blocks.append(
            Para(
                (
                    t(
                        f"One object that grew by ~{human_bytes(ch['bytes_growth'])} in size, kept alive by "
                        if ch.get("growth") == "size"
                        else f"+{ch['count_growth']} objects (~{human_bytes(ch['bytes_growth'])}), kept alive by "
                    ),
                    b(ch["root"]),
                    t(
                        (
                            "; chain"
                            if ch.get("growth") == "size"
                            else f"; chain of one of {ch['samples']} sampled objects,"
                        )
                        + f" taken {ch['taken_at']:g} s into the run."
                    ),
                )
            )
        )
        blocks.append(Code("\n  → ".join(ch["chain"])))
        blocks.append(Para((t("Pattern: "), b(ch["pattern"]), t(". Usual fix: " + ch["fix"] + "."))))
        if ch.get("graph"):
            blocks.append(Image(ch["graph"], f"references to {ch['type']}"))
        elif ch.get("graph_problem"):
            spans = [t("No image: " + ch["graph_problem"])]
            if ch.get("dot"):
                spans += [t(" The Graphviz source is "), c(ch["dot"]), t(".")]
            blocks.append(Para(tuple(spans)))
    return blocks


def _ending_section(evidence: Mapping[str, Any]) -> list[Block]:
    ex = evidence["target"]["exit"]
    blocks: list[Block] = [Heading(2, "How the target ended")]
    spans = [
        t(f"The target {ex['description']} after {evidence['target'].get('duration_s') or 0:.1f} s (status "),
        c(ex["status"]),
    ]
    spans.append(t(")."))
    blocks.append(Para(tuple(spans)))
    if ex.get("traceback"):
        blocks.append(
            Code(_frames_text(ex["traceback"]) + f"\n{ex['exception']['type']}: {ex['exception']['message']}")
        )
    if ex.get("stderr_tail"):
        blocks.append(Para((t("The last lines it wrote to stderr:"),)))
        blocks.append(Code(ex["stderr_tail"].rstrip("\n")))
    return blocks


def _stages_section(evidence: Mapping[str, Any]) -> list[Block]:
    rows = tuple(((c(name),), (t(s["status"]),), (t(s["message"]),)) for name, s in evidence["stages"].items())
    return [Heading(2, "Stages"), Table(("stage", "status", "what it found"), rows)]


def _environment_section(evidence: Mapping[str, Any]) -> list[Block]:
    env = evidence.get("environment", {})
    items = tuple((t(f"{k}: "), c(str(v))) for k, v in env.items())
    return [Heading(2, "Environment"), Bullets(items)]
