"""The lines of a module that add to one of its globals: where a root that backrefs found is written.

tracemalloc and the native tracker name the line that allocated what grows. When that line is library code
(a pool worker unpickling its tasks, a client decoding responses), the line the user can change is the one
that stores the result in the root, e.g. `SEEN_ARTICLES.append(article)`: it is found in the root module's
source, without running anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

# Methods that put something into a list, dict, set or deque.
ADDING = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft", "extendleft"})


def lines_adding_to(file: str, name: str) -> tuple[int, ...]:
    """Lines of `file` that add to its global `name`: `name.append(...)` and the like, `name[k] = v`,
    `name += ...`. Empty when the file cannot be read or parsed."""
    try:
        tree = ast.parse(Path(file).read_text(), filename=file)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ()
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ADDING and _is_name(node.func.value, name):
                found.add(node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (isinstance(target, ast.Subscript) and _is_name(target.value, name)) or (
                    isinstance(node, ast.AugAssign) and _is_name(target, name)
                ):
                    found.add(node.lineno)
    return tuple(sorted(found))


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
