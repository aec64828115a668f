"""Checks made before anything runs: sizes and targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.errors import UsageError
from leakbench.target import make_target, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GB", 10**9),
        ("512MiB", 512 * 1024**2),
        ("2g", 2 * 10**9),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("4096", 4096),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1GB", "1XB", "", "GB"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="memory-limit"):
        parse_size(text)


def test_missing_script(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        make_target(str(tmp_path / "nope.py"))


def test_binary_file_is_not_python(tmp_path: Path) -> None:
    path = tmp_path / "blob.py"
    path.write_bytes(b"\x7fELF\x00\x01\x02")
    with pytest.raises(UsageError, match="not a Python source file"):
        make_target(str(path))


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("x = 1\ndef (:\n")
    with pytest.raises(UsageError, match="line 2"):
        make_target(str(path))


def test_missing_module_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no module named no_such_module_xyz"):
        make_target("no_such_module_xyz", module=True, cwd=str(tmp_path))


def test_missing_submodule_of_a_real_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no module named json\.nope"):
        make_target("json.nope", module=True, cwd=str(tmp_path))


def test_package_without_main_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="without a __main__"):
        make_target("email", module=True, cwd=str(tmp_path))


def test_module_is_found_without_running_its_package(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    marker = tmp_path / "ran"
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (pkg / "tool.py").write_text("print('hi')\n")
    spec = make_target("mypkg.tool", module=True, cwd=str(tmp_path))
    assert spec.module == "mypkg.tool"
    assert not marker.exists()
    assert make_target("json.tool", module=True, cwd=str(tmp_path)).module == "json.tool"
