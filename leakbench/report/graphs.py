"""Reference graphs: Graphviz `dot` sources rendered to SVG and PNG by the real `dot` program.

Without `dot` the source is kept next to where the images would be, with a hint on installing Graphviz;
the chain itself is always given in text by the report, so nothing is lost but the picture.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "install Graphviz (apt install graphviz, dnf install graphviz, brew install graphviz or "
    "conda install graphviz), then render with `dot -Tsvg {dot} -o {svg}`"
)
RENDER_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class RenderedGraph:
    dot: Path
    svg: Path | None = None
    png: Path | None = None
    problem: str | None = None  # why there is no image, and what to do

    @property
    def image(self) -> Path | None:
        return self.png or self.svg


def find_dot() -> str | None:
    return shutil.which("dot")


def render_dot(source: str, out_base: Path, dot: str | None = None) -> RenderedGraph:
    """Write `out_base`.dot and render it to `out_base`.svg and .png with `dot` (found on PATH by default)."""
    out_base.parent.mkdir(parents=True, exist_ok=True)
    dot_path = out_base.with_suffix(".dot")
    dot_path.write_text(source)
    svg_path, png_path = out_base.with_suffix(".svg"), out_base.with_suffix(".png")
    program = dot or find_dot()
    if program is None:
        return RenderedGraph(
            dot_path, problem="Graphviz `dot` was not found: " + INSTALL_HINT.format(dot=dot_path, svg=svg_path)
        )
    made: dict[str, Path] = {}
    for fmt, path in (("svg", svg_path), ("png", png_path)):
        try:
            proc = subprocess.run(
                [program, f"-T{fmt}", str(dot_path), "-o", str(path)],
                capture_output=True,
                text=True,
                timeout=RENDER_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return RenderedGraph(dot_path, problem=f"`{program}` could not render {dot_path.name}: {exc}")
        if proc.returncode != 0 or not path.exists():
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            return RenderedGraph(dot_path, problem=f"`{program} -T{fmt}` failed on {dot_path.name}: {tail[0]}")
        made[fmt] = path
    return RenderedGraph(dot_path, svg=made.get("svg"), png=made.get("png"))
