"""Charts as PNG (for report.md) and SVG (inlined in report.html), drawn with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MultipleLocator

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    times: Sequence[float]
    values: Sequence[float]


def _mib(value: float, _pos: int) -> str:
    return f"{value / MIB:,.0f} MiB" if value >= 10 * MIB else f"{value / MIB:,.1f} MiB"


def _step(top: float) -> float:
    """A round tick step in MiB giving about five ticks up to `top` bytes."""
    for mib in (0.25, 0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1024, 2048, 5120, 10240):
        if top / (mib * MIB) <= 6:
            return mib * MIB
    return top / 5 or MIB


def line_chart(
    lines: Sequence[Line],
    out: Path,
    *,
    title: str,
    ylabel: str = "memory",
    limit: float | None = None,
    fit: tuple[float, float, float, float] | None = None,
) -> tuple[Path, Path]:
    """Draw memory-over-time lines; `fit` = (t0, t1, y0, y1) draws the trend line. Returns (png, svg)."""
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    for line in lines:
        ax.plot(line.times, line.values, label=line.label, linewidth=1.4)
    if fit:
        ax.plot([fit[0], fit[1]], [fit[2], fit[3]], linestyle="--", color="grey", linewidth=1, label="trend")
    if limit:
        ax.axhline(limit, color="crimson", linestyle=":", linewidth=1.2, label="memory limit")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    top = max((max(line.values, default=0) for line in lines), default=0)
    ax.yaxis.set_major_locator(MultipleLocator(_step(max(top, limit or 0))))
    ax.yaxis.set_major_formatter(FuncFormatter(_mib))
    ax.grid(alpha=0.3)
    if len(lines) > 1 or fit or limit:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    svg = out.with_suffix(".svg")
    fig.savefig(png)
    fig.savefig(svg)
    plt.close(fig)
    return png, svg
