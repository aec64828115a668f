"""A flame graph of leaked (or live) native memory as one self-contained HTML file: no CDN, no external
script, every name HTML-escaped. Wider boxes hold more bytes; the root is at the top (an icicle), callers
above callees; click a box to zoom into it, click the root to zoom out."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leakbench.analysis.native import StackGroup
from leakbench.native.symbolize import StackFrame
from leakbench.units import human_bytes


@dataclass(slots=True)
class _Node:
    label: str
    kind: str
    bytes: int = 0
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(groups: Iterable[StackGroup]) -> _Node:
    root = _Node("all", "root")
    for group in groups:
        root.bytes += group.bytes
        root.count += group.count
        node = root
        for frame in reversed(group.frames):  # outermost first
            label = _label(frame)
            child = node.children.get(label)
            if child is None:
                child = node.children[label] = _Node(label, frame.kind)
            child.bytes += group.bytes
            child.count += group.count
            node = child
    return root


def _label(frame: StackFrame) -> str:
    if frame.kind == "python":
        return f"{frame.function} ({frame.file}:{frame.line})"
    return frame.function


def _render(node: _Node, total: int, min_fraction: float, out: list[str]) -> None:
    title = html.escape(f"{node.label}\n{human_bytes(node.bytes)} in {node.count:,} blocks", quote=True)
    share = node.bytes / total if total else 0.0
    out.append(
        f'<div class="n {node.kind}" style="flex-grow:{node.bytes}"><div class="b" title="{title}">'
        f"{html.escape(node.label)} <i>{share:.1%}</i></div>"
    )
    kids = sorted(node.children.values(), key=lambda c: (-c.bytes, c.label))
    shown = [k for k in kids if k.bytes >= total * min_fraction]
    if shown:
        out.append('<div class="k">')
        for kid in shown:
            _render(kid, total, min_fraction, out)
        # the space of children too small to draw, and of bytes allocated in this very frame
        gap = node.bytes - sum(k.bytes for k in shown)
        if gap > 0:
            out.append(f'<div class="n gap" style="flex-grow:{gap}"></div>')
        out.append("</div>")
    out.append("</div>")


_STYLE = """
body{font:12px/1.3 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:16px;margin:0 0 4px} p{margin:0 0 10px;color:#555}
.fg{display:flex;width:100%}
.n{display:flex;flex-direction:column;min-width:0;flex-basis:0}
.k{display:flex;flex-direction:row}
.b{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:2px 3px;margin:0 1px 1px 0;
border-radius:2px;cursor:pointer;height:16px}
.b i{color:#555;font-style:normal}
.root>.b{background:#ddd}.python>.b{background:#f6c08f}.native>.b{background:#9fc5e8}
.gap{visibility:hidden}
.b:hover{outline:1px solid #333}
"""

_SCRIPT = """
document.addEventListener('click',function(e){var b=e.target.closest('.b');if(!b)return;
var n=b.parentNode;var root=document.querySelector('.fg>.n');
if(n===root){document.querySelectorAll('.n').forEach(function(x){x.style.display='';});return;}
document.querySelectorAll('.n').forEach(function(x){x.style.display=
(x===n||x.contains(n)||n.contains(x))?'':'none';});});
"""


def render_flamegraph_html(
    groups: Sequence[StackGroup], *, title: str = "Native memory still live", min_fraction: float = 0.002
) -> str:
    """The HTML page for these stack groups (e.g. LeakReport.groups or HighWater.groups)."""
    root = _tree(groups)
    body: list[str] = []
    _render(root, root.bytes, min_fraction, body)
    subtitle = f"{human_bytes(root.bytes)} in {root.count:,} blocks; Python frames orange, native blue"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        f"<div class='fg'>{''.join(body)}</div><script>{_SCRIPT}</script></body></html>"
    )
