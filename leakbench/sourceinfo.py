"""Read the target's source: the text of a line and the function that encloses it."""

from __future__ import annotations

import ast
import linecache
from functools import lru_cache


def line_text(file: str, line: int) -> str:
    return linecache.getline(file, line).strip()


def function_at(file: str, line: int) -> str:
    """The qualified name of the innermost function or class around `line`, or `<module>`."""
    spans = _spans(file)
    if spans is None:
        return "?"
    best = "<module>"
    best_size = None
    for first, last, name in spans:
        if first <= line <= last and (best_size is None or last - first < best_size):
            best, best_size = name, last - first
    return best


@lru_cache(maxsize=256)
def _spans(file: str) -> tuple[tuple[int, int, str], ...] | None:
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            tree = ast.parse(handle.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return None
    out: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.append((first, child.end_lineno or child.lineno, name))
                inner = f"{name}.<locals>." if not isinstance(child, ast.ClassDef) else f"{name}."
                visit(child, inner)
            else:
                visit(child, prefix)

    visit(tree, "")
    return tuple(out)
