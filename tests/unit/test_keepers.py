"""The user's line that stores what a library line allocated: found in the root module's source."""

from __future__ import annotations

from pathlib import Path

from leakbench.analysis.findings import with_keepers
from leakbench.analysis.keepers import lines_adding_to
from leakbench.analysis.model import Retention, Suspect

MODULE = """\
SEEN = []
INDEX = {}
TOTAL = 0


def remember(article):
    SEEN.append(article)
    INDEX[article[:8]] = article
    return len(SEEN)


def local_only(seen):
    seen.append(1)  # a parameter, not the global
    TOTAL += 1  # not a container
    return SEEN[0]  # read, not added to
"""


def test_lines_that_add_to_a_module_global(tmp_path: Path) -> None:
    module = tmp_path / "wordstats.py"
    module.write_text(MODULE)
    assert lines_adding_to(str(module), "SEEN") == (7,)
    assert lines_adding_to(str(module), "INDEX") == (8,)
    assert lines_adding_to(str(tmp_path / "missing.py"), "SEEN") == ()
    (tmp_path / "broken.py").write_text("def (:\n")
    assert lines_adding_to(str(tmp_path / "broken.py"), "SEEN") == ()


def _suspect(file: str, line: int, pid: int, trend: str = "steady", library: bool = False, size: int = 0) -> Suspect:
    return Suspect(file, line, "f", size, 10, pid, ("tracemalloc",), True, trend=trend, library=library)


KEPT = (("/app/wordstats.py", 7, "remember", "SEEN.append(article)"),)
QUEUES = "/usr/lib/python3.11/multiprocessing/queues.py"


def test_a_workers_growth_allocated_by_library_code_is_put_on_the_line_that_keeps_it() -> None:
    roles = {1: "main", 2: "child", 3: "child"}
    suspects = [_suspect(QUEUES, 367, 2, library=True, size=6_000_000), _suspect("/app/main.py", 14, 1, "one-off")]
    retention = [Retention("str", 200, 900_000, 3, "module global wordstats.SEEN in pid 3", (), kept_at=KEPT)]
    out = with_keepers(suspects, retention, roles)  # type: ignore[arg-type]
    top = out[0]
    assert (top.file, top.line, top.pid, top.bytes) == ("/app/wordstats.py", 7, 2, 6_000_000)
    assert top.keeps == f"{QUEUES}:367" and top.stages == ("backrefs",) and not top.traceback
    assert out[1].file == QUEUES  # the allocating line stays, after the one to change


def test_growth_the_users_own_line_allocates_keeps_its_line() -> None:
    roles = {2: "child"}
    suspects = [_suspect("/app/wordstats.py", 9, 2, size=6_000_000), _suspect(QUEUES, 367, 2, library=True)]
    retention = [Retention("str", 200, 900_000, 2, "module global wordstats.SEEN in pid 2", (), kept_at=KEPT)]
    assert with_keepers(suspects, retention, roles) == suspects  # type: ignore[arg-type]
    # nor is a root in another role's process used for it
    library_only = [_suspect(QUEUES, 367, 2, library=True)]
    main_root = [Retention("str", 200, 900_000, 1, "module global wordstats.SEEN", (), kept_at=KEPT)]
    assert with_keepers(library_only, main_root, {1: "main", 2: "child"}) == library_only
