"""The report's two renderings carry the same content, and nothing from the target becomes markup."""

from __future__ import annotations

from pathlib import Path

from leakbench.report.document import Code, Heading, Para, Table, c, t, to_html, to_markdown


def test_target_strings_are_escaped_in_html(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    blocks = [Heading(1, evil), Para((t(evil), c(evil))), Table(("a",), (((t(evil),),),)), Code(evil)]
    page = to_html(blocks, tmp_path, evil)
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;") >= 5


def test_markdown_table_cells_cannot_break_the_table() -> None:
    md = to_markdown([Table(("code",), (((c("a | b"),),),))])
    assert md.splitlines()[2].count("|") - md.splitlines()[2].count("\\|") == 2


def test_markdown_keeps_names_readable_and_escapes_emphasis() -> None:
    md = to_markdown([Para((t("module global __main__.data and data_pipeline.buffer"),))])
    assert "data_pipeline.buffer" in md
    assert "\\_\\_main\\_\\_.data" in md
