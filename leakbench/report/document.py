"""A tiny document model so that report.md and report.html carry the same content.

The report builder makes blocks; one renderer writes Markdown, the other escaped HTML. Inline spans are
plain text, `code` or **bold**, so that no string from the target is ever taken as markup.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    style: str = ""  # "", "code", "bold"


Inline = tuple[Span, ...]


def t(text: str) -> Span:
    return Span(text)


def c(text: str) -> Span:
    return Span(text, "code")


def b(text: str) -> Span:
    return Span(text, "bold")


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Para:
    spans: Inline


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    path: str  # relative to the run directory
    alt: str


@dataclass(frozen=True, slots=True)
class Embed:
    """A self-contained page of the run (the flame graph): a link in Markdown, inlined in HTML."""

    path: str  # relative to the run directory
    title: str


Block = Heading | Para | Bullets | Table | Code | Image | Embed


# -- Markdown ---------------------------------------------------------------------------------------
# CommonMark takes `_` as emphasis only at a word's edge; escaping it inside names would show in raw text.
_UNDERSCORE_AT_EDGE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_span(span: Span) -> str:
    text = span.text.replace("\n", " ")
    if span.style == "code":
        fence = "``" if "`" in text else "`"
        pad = " " if "`" in text else ""
        return f"{fence}{pad}{text}{pad}{fence}"
    escaped = _UNDERSCORE_AT_EDGE.sub(r"\\_", text.replace("*", "\\*").replace("`", "\\`").replace("<", "&lt;"))
    return f"**{escaped}**" if span.style == "bold" else escaped


def _md_inline(spans: Inline, in_table: bool = False) -> str:
    out = "".join(_md_span(s) for s in spans)
    return out.replace("|", "\\|") if in_table and not any(s.style == "code" for s in spans) else out


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(_md_inline(block.spans))
        elif isinstance(block, Bullets):
            out.append("\n".join("- " + _md_inline(item) for item in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
            for row in block.rows:
                cells = [_md_inline(cell).replace("|", "\\|") if cell else "" for cell in row]
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
        elif isinstance(block, Code):
            fence = "````" if "```" in block.text else "```"
            out.append(f"{fence}\n{block.text}\n{fence}")
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path})")
        elif isinstance(block, Embed):
            out.append(f"[{block.title}]({block.path})")
    return "\n\n".join(out) + "\n"


# -- HTML -------------------------------------------------------------------------------------------
def _html_span(span: Span) -> str:
    text = html.escape(span.text)
    if span.style == "code":
        return f"<code>{text}</code>"
    if span.style == "bold":
        return f"<strong>{text}</strong>"
    return text


def _html_inline(spans: Inline) -> str:
    return "".join(_html_span(s) for s in spans)


def _image(run_dir: Path, block: Image) -> str:
    """Inline the image so the page stands alone: SVG as markup, PNG as a data URI."""
    path = run_dir / block.path
    svg = path.with_suffix(".svg")
    if svg.exists():
        data = base64.b64encode(svg.read_bytes()).decode()
        return f'<img alt="{html.escape(block.alt)}" src="data:image/svg+xml;base64,{data}">'
    if path.exists():
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
    return f"<p><em>missing image {html.escape(block.path)}</em></p>"


def _embed(run_dir: Path, block: Embed) -> str:
    """The page inside a sandboxed frame: its own script runs, nothing reaches this page or the network."""
    path = run_dir / block.path
    if not path.is_file():
        return f"<p><em>missing {html.escape(block.path)}</em></p>"
    page = html.escape(path.read_text(), quote=True)
    title = html.escape(block.title)
    return (
        f'<iframe title="{title}" sandbox="allow-scripts" srcdoc="{page}" '
        'style="width:100%;height:520px;border:1px solid #ddd"></iframe>'
    )


STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.88em}img{max-width:100%}
"""


def to_html(blocks: list[Block], run_dir: Path, title: str) -> str:
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-src 'self' about: data:\">",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_html_inline(block.spans)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Code):
            out.append(f"<pre>{html.escape(block.text)}</pre>")
        elif isinstance(block, Image):
            out.append(_image(run_dir, block))
        elif isinstance(block, Embed):
            out.append(_embed(run_dir, block))
    out.append("</body></html>")
    return "\n".join(out) + "\n"
